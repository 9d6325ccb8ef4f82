"""Ctrl-C ends a run: a real SIGINT sent to a child process (issue 13, finding 5).

OSQP installs its own SIGINT handler while it solves; a Ctrl-C caught there used to mark the sample
"interrupted" and the loop went on, and ``mpc2nn validate`` then printed a made-up PASS or FAIL.
Now the API raises KeyboardInterrupt and the command line exits 130 without a verdict. A second
finding of the same kind: after concurrent OSQP solves in threads, Python's own SIGINT handler was
gone for good (OSQP keeps the handler it replaces in a static variable).
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: A child that announces (on stderr) each OSQP solve loop it starts, then runs ``BODY``.
PRELUDE = textwrap.dedent("""
    import sys
    import mpc2nn
    from mpc2nn.reference import _osqp
    _solve = _osqp.OSQPSession.solve
    def solve(self, X):
        print("osqp started", file=sys.stderr, flush=True)
        return _solve(self, X)
    _osqp.OSQPSession.solve = solve
    # a slow QP: each OSQP solve takes ~0.3 s on the oscillating masses at horizon 50
    slow = mpc2nn.systems.oscillating_masses().replace(horizon=50, name="slow")
""")


def _child(body: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _interrupt_once_osqp_runs(proc: subprocess.Popen, delay: float = 0.6, timeout: float = 120.0):
    """Wait for "osqp started", send SIGINT ``delay`` seconds later; ``(returncode, stdout, stderr, seconds)``."""
    assert proc.stderr is not None
    err_lines = []
    for line in proc.stderr:
        err_lines.append(line)
        if "osqp started" in line:
            break
    else:
        raise AssertionError("the child never started OSQP: " + "".join(err_lines))
    time.sleep(delay)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, "".join(err_lines) + err, time.perf_counter() - t0


def test_ctrl_c_during_osqp_raises_keyboard_interrupt():
    proc = _child("""
        import numpy as np
        try:
            mpc2nn.solve_osqp(slow, np.full((40, 12), 3.9))   # ~12 s of solving
        except KeyboardInterrupt as exc:
            print("interrupted:", exc, file=sys.stderr)
            sys.exit(130)
        print("finished")
    """)
    code, out, err, seconds = _interrupt_once_osqp_runs(proc)
    assert code == 130, err
    assert "interrupted" in err and "finished" not in out
    assert seconds < 5.0  # the run ended at the interrupt, not after the remaining states


def test_ctrl_c_during_validate_exits_130_without_a_verdict(tmp_path):
    proc = _child(f"""
        import numpy as np
        path = mpc2nn.save(slow, {str(tmp_path / "slow.mpc2nn")!r})
        from mpc2nn.cli import main
        sys.exit(main(["validate", str(path), "--samples", "1000", "--reference", "osqp"]))
    """)
    code, out, err, seconds = _interrupt_once_osqp_runs(proc)
    assert code == 130, err
    assert "error: interrupted" in err
    assert "PASS" not in out and "FAIL" not in out and out.strip() == ""
    assert "Traceback" not in err
    assert seconds < 5.0


def test_ctrl_c_still_works_after_concurrent_osqp_solves():
    proc = _child("""
        import os, signal, threading, time
        import numpy as np
        prob = mpc2nn.systems.quadcopter()
        X = mpc2nn.sample_states(prob, 40, seed=0)
        threads = [threading.Thread(target=lambda i=i: [mpc2nn.solve_osqp(prob, X[i::4]) for _ in range(3)])
                   for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2.0)
            print("SIGINT lost", file=sys.stderr)
            sys.exit(3)
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err

"""Public functions called from several threads at once (issue 13, finding 6).

Concurrent ``solve_osqp`` calls used to leave the process's stdout redirected to /dev/null for good
(5 of 6 runs): each call silenced file descriptor 1 and ``sys.stdout`` and restored what it had saved,
which, interleaved, was the other thread's silenced stream.
"""
import os
import sys
import threading
import time

import numpy as np
import pytest

import mpc2nn
from tests.tolerances import TOL

PROB = mpc2nn.systems.double_integrator()


def _run_in_threads(fn, n_threads=6):
    """``fn(i)`` in ``n_threads`` threads started together; their results (exceptions re-raised)."""
    barrier = threading.Barrier(n_threads)
    out: list = [None] * n_threads

    def work(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except BaseException as e:  # handed back to the main thread
            out[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


def _stdout_identity():
    st = os.fstat(1)
    return sys.stdout, (st.st_dev, st.st_ino)


def test_concurrent_osqp_leaves_stdout_as_it_was():
    X = mpc2nn.sample_states(PROB, 40, seed=1)
    before = _stdout_identity()
    for _ in range(5):
        results = _run_in_threads(lambda i: mpc2nn.solve_osqp(PROB, X[i::6]))
        assert _stdout_identity() == before
    serial = [mpc2nn.solve_osqp(PROB, X[i::6]) for i in range(6)]
    for r, s in zip(results, serial, strict=True):
        np.testing.assert_allclose(r.U, s.U, atol=TOL["vs_osqp", "float64"])


def test_concurrent_solves_and_validation_agree_with_serial_ones():
    net = mpc2nn.compile(PROB)
    X = mpc2nn.sample_states(PROB, 60, seed=2)
    before = _stdout_identity()
    jobs = [lambda Xi: net.solve(Xi).U, lambda Xi: mpc2nn.solve_daqp(PROB, Xi).U,
            lambda Xi: mpc2nn.solve_osqp(PROB, Xi).U, lambda Xi: mpc2nn.validate(net, PROB, Xi).error]
    parts = [X[i::8] for i in range(8)]
    got = _run_in_threads(lambda i: jobs[i % 4](parts[i]), n_threads=8)
    assert _stdout_identity() == before
    for i in range(8):
        want = jobs[i % 4](parts[i])
        np.testing.assert_allclose(got[i], want, atol=TOL["vs_osqp", "float64"], equal_nan=True)


def test_osqp_silencing_does_not_swallow_other_threads_output(capfd):
    # while OSQP runs in one thread, a print of another thread reaches stdout
    X = mpc2nn.sample_states(PROB, 200, seed=3)
    started = threading.Event()

    def solve():
        started.set()
        mpc2nn.solve_osqp(PROB, X)

    t = threading.Thread(target=solve)
    t.start()
    started.wait()
    said = 0
    while t.is_alive() or said == 0:
        print(f"main thread says hello {said}")
        said += 1
        time.sleep(0.002)
    t.join()
    out = capfd.readouterr().out
    assert all(f"main thread says hello {k}\n" in out for k in range(said)), (said, out.count("hello"))


def test_concurrent_exports_leave_the_warning_filters_as_they_were(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import warnings

    from mpc2nn.deploy import to_onnx, to_torchscript

    ex = mpc2nn.unravel(mpc2nn.compile(mpc2nn.systems.drummond2024()), depth=3)
    before = list(warnings.filters)
    writers = [to_torchscript, to_onnx]
    for _ in range(2):
        _run_in_threads(lambda i: writers[i % 2](ex, tmp_path / f"net{i}.{'pt' if i % 2 == 0 else 'onnx'}"),
                        n_threads=4)
        assert list(warnings.filters) == before


_PRINT_RACE = """
import io, sys, threading, time
from mpc2nn.reference import _osqp
stop = False
def churn():  # a thread entering and leaving OSQP's silencing as fast as it can
    while not stop:
        with _osqp._quiet_stdout():
            pass
t = threading.Thread(target=churn)
t.start()
sys.stdout = io.StringIO()
t0 = time.time()
while time.time() - t0 < 1.5:
    print("the main thread prints", 1, 2, 3)
stop = True
t.join()
"""


def test_printing_while_another_thread_leaves_the_silencing_does_not_crash():
    # print() holds sys.stdout as a borrowed reference across its writes: a proxy freed when another thread
    # restored sys.stdout crashed the process (exit -11, segfault in the proxy's write) before proxies were kept
    import subprocess

    run = subprocess.run([sys.executable, "-c", _PRINT_RACE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])

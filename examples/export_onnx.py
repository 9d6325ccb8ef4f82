"""
Export to ONNX and check it in onnxruntime
==========================================

An explicit network is only useful where it runs. This tutorial unravels the
quadcopter's MPC into the default construction (an ADMM unroll) with the depth
chosen for a largest error of 1e-6 on selection states, writes it as an ONNX
graph (input: the state; output: the four thrusts to apply), runs the graph in
onnxruntime on other states, compares it with the torch module and with the
exact MPC law, lists the operators in the graph (MatMul, Add, Sub, Mul, Relu —
what NN verifiers accept) and saves the network in mpc2nn's own format.

The full run tunes the ADMM step ``rho`` and relaxation on 100 states (the slow
part, about 20 s) and tests on 1000 states; ``--small`` (the run shown in the
documentation) skips the tuning, using the values the full run's tuning picks,
and tests on 100 states: the same network, fewer test states. Run it with::

    python examples/export_onnx.py --output out

"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

import mpc2nn
import mpc2nn.export

#: ADMM options the full run's tuning picks on the quadcopter (100 states, seed 22), measured with
#: ``python examples/export_onnx.py``: ``--small`` uses them instead of tuning.
TUNED = dict(rho=0.7884701388830021, relax=1.9)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Export an explicit network to ONNX and check it.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true",
                        help="no tuning run (the full run's values), 100 test states (used by the tests and docs)")
    args = parser.parse_args(argv)
    import onnx
    import onnxruntime

    problem = mpc2nn.systems.quadcopter()
    net = mpc2nn.compile(problem)
    tol = 1e-6
    X_fit = mpc2nn.sample_states(problem, 100 if args.small else 400, seed=20)  # choose the depth on these
    X_test = mpc2nn.sample_states(problem, 100 if args.small else 1000, seed=21)  # report accuracy on these
    if args.small:  # the values the full run's tuning (on 100 states, seed 22) picks: no tuning run here
        explicit = mpc2nn.unravel(net, tol=tol, states=X_fit, rho=TUNED["rho"], relax=TUNED["relax"])
    else:
        explicit = mpc2nn.unravel(net, tol=tol, states=X_fit,
                                  tuning_states=mpc2nn.sample_states(problem, 100, seed=22))
    opts = explicit.options
    print(f"explicit network: {explicit.method} (rho {opts.rho:.4g}, relax {opts.relax:g}"
          f"{', as tuned by the full run' if args.small else ', tuned'}), depth {explicit.depth}")
    print(f"depth choice: {explicit.selection.guarantee}")

    args.output.mkdir(parents=True, exist_ok=True)
    path = mpc2nn.export.to_onnx(explicit, args.output / "quadcopter.onnx", output="control")
    graph = onnx.load(str(path))
    ops = Counter(node.op_type for node in graph.graph.node)
    print(f"ONNX graph {path} ({path.stat().st_size / 1024:.0f} KiB): " + ", ".join(f"{k} x{v}" for k, v in
                                                                                   sorted(ops.items())))
    session = onnxruntime.InferenceSession(str(path))
    u_onnx = session.run(None, {"x": X_test})[0]
    u_torch = explicit.evaluate(X_test)[:, :problem.n_u]
    u_exact = net.solve(X_test).u0
    gap_runtime = float(np.abs(u_onnx - u_torch).max())
    gap_mpc = float(np.abs(u_onnx - u_exact).max())
    bound = explicit.error_bound(X_test)
    print(f"onnxruntime vs torch: max |Δu| = {gap_runtime:.1e}")
    print(f"onnxruntime vs exact MPC: max |Δu| = {gap_mpc:.1e} on {len(X_test)} states not used to choose the "
          f"depth (tolerance {tol:g}: {'met' if gap_mpc <= tol else 'NOT met'} on these)")
    print(f"a-posteriori error bound over them: max {bound.max():.1e} (a proof for each state, looser than "
          "the measured error)")

    saved = mpc2nn.save(explicit, args.output / "quadcopter_explicit.mpc2nn")
    back = mpc2nn.load(saved, expect_problem=problem)
    same = np.array_equal(back.evaluate(X_test), explicit.evaluate(X_test))
    print(f"saved to {saved}; reloaded network identical: {same}")
    print("the command line does the same (tuning on its own sampled states):")
    print(f"  mpc2nn unravel builtin:quadcopter --tol {tol:g} -o out/q.mpc2nn")
    print("  mpc2nn export out/q.mpc2nn --format onnx -o out/q.onnx")
    return dict(ops=ops, gap_runtime=gap_runtime, gap_mpc=gap_mpc, depth=explicit.depth, tol=tol,
                bound=bound.max())


if __name__ == "__main__":
    main()

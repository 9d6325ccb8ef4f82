"""
Export to ONNX and check it in onnxruntime
==========================================

An explicit network is only useful where it runs. This tutorial unravels the
quadcopter's MPC into the default construction with a depth chosen for a
tolerance on sampled states, writes it as an ONNX graph (input: the state;
output: the four thrusts to apply), runs the graph in onnxruntime on other
states, compares it with the torch module and with the exact MPC law, lists the
operators in the graph (MatMul, Add, Sub, Mul, Relu — what NN verifiers accept)
and saves the network in mpc2nn's own format.

    python examples/export_onnx.py --output out/
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

import mpc2nn
import mpc2nn.export


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Export an explicit network to ONNX and check it.")
    parser.add_argument("--output", type=Path, default=Path("out"))
    parser.add_argument("--small", action="store_true", help="fewer states (used by the tests)")
    args = parser.parse_args(argv)
    import onnx
    import onnxruntime

    problem = mpc2nn.systems.quadcopter()
    net = mpc2nn.compile(problem)
    X_fit = mpc2nn.sample_states(problem, 30 if args.small else 400, seed=20)
    X_test = mpc2nn.sample_states(problem, 100 if args.small else 1000, seed=21)
    tol = 1e-2 if args.small else 1e-4  # the small run (tests, docs) keeps the tuning short
    explicit = mpc2nn.unravel(net, tol=tol, states=X_fit, tuning_states=X_fit)
    print(f"explicit network: {explicit.method}, depth {explicit.depth}; {explicit.selection.guarantee}")

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
    print(f"onnxruntime vs torch: max |Δu| = {gap_runtime:.1e}; onnxruntime vs exact MPC: {gap_mpc:.1e} "
          f"on {len(X_test)} states not used to choose the depth")

    saved = mpc2nn.save(explicit, args.output / "quadcopter_explicit.mpc2nn")
    back = mpc2nn.load(saved, expect_problem=problem)
    same = np.array_equal(back.evaluate(X_test), explicit.evaluate(X_test))
    print(f"saved to {saved}; reloaded network identical: {same}")
    print(f"the command line does the same: mpc2nn unravel builtin:quadcopter --tol {tol:g} -o q.mpc2nn && "
          "mpc2nn export q.mpc2nn --format onnx -o q.onnx")
    return dict(ops=ops, gap_runtime=gap_runtime, gap_mpc=gap_mpc, depth=explicit.depth)


if __name__ == "__main__":
    main()

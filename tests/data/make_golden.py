"""Write the golden solutions of the public problems (tests/data/golden/NAME.npz).

Each file holds 40 states of the problem's sample box (seed 2026, no feasibility filter), DAQP's
solution (``primal_tol`` 1e-10) and feasibility verdict, and the problem hash: tests/test_golden.py
checks the exact solver against them, as osqp-python's tests/solutions/*.npz do. Run it again only when
a public problem changes on purpose (the test refuses stale files by their hash)::

    .venv/bin/python tests/data/make_golden.py
"""
from pathlib import Path

import numpy as np

import mpc2nn

OUT = Path(__file__).resolve().parent / "golden"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, make in mpc2nn.systems.all_problems().items():
        problem = make()
        qp = mpc2nn.qp.as_qp(problem)
        lo, hi = qp.sample_box
        X = lo + (hi - lo) * np.random.default_rng(2026).random((40, qp.n_x))
        ref = mpc2nn.solve_daqp(problem, X)
        np.savez_compressed(OUT / f"{name}.npz", X=X, U=ref.U, feasible=ref.feasible,
                            problem_hash=np.array(mpc2nn.problem_hash(problem)),
                            solver=np.array("daqp primal_tol=1e-10"))
        print(f"{name}: {int(ref.feasible.sum())}/{len(X)} feasible")


if __name__ == "__main__":
    main()

"""Forward+backward time and gradient accuracy of mpc2nn.MPCLayer against cvxpylayers and qpth.

For each public problem, on sampled feasible states (seed 0), in one run:

**Timing** of one forward and one backward pass of the loss ``Σ g ⊙ U`` (``g`` a fixed
random array) with respect to ``θ = x``, per batch size (1, 100, 1000, 10 000):

* mpc2nn — ``MPCLayer(problem)``: the exact batched solve forward, implicit differentiation
  on the active set backward (after one warm-up call, which compiles the network);
* cvxpylayers — ``CvxpyLayer`` of the same condensed QP (variable ``z``, parameter ``θ``,
  objective ``½zᵀHz + (Fθ)ᵀz``, constraints ``Gz <= w + Eθ``), diffcp with SCS at
  ``eps = 1e-10`` and dense derivatives (``mode="dense"``): its default SCS tolerances give
  errors of 0.1-0.4 in U on these problems, and its default LSQR derivatives Jacobian
  errors of order 1-20 on the double integrator (both measured while writing this);
* qpth — ``QPFunction()(H, θFᵀ, G, w + θEᵀ)`` at its defaults (batched primal-dual
  interior point, eps 1e-12, at most 20 iterations).

Peers run up to ``--peer-max-batch`` (default 1000: at 10 000 states they take minutes per
problem); each is skipped, and says so, when not installed. The ratio columns are peer
time / mpc2nn time. NaN counts are over the outputs and gradients of all timed (feasible)
states.

**Gradient accuracy** on ``--grad-states`` states whose separation from an active-set switch
(reported by the layer) exceeds 1e-3, with the active sets at ``θ ± h`` checked to be the
same: the Jacobian ``dU/dθ`` of each tool against central differences of DAQP solutions
(step ``1e-5·max(1, |θ_j|)``), relative per state to ``max(‖J_fd‖_max, ‖T H⁻¹F‖_max)`` (the
unconstrained gain: where every input is at a bound the Jacobian is zero), worst state
reported; mpc2nn against cvxpylayers; and ``d(gᵀU)/dQ``, ``d/dR`` of mpc2nn against fourth-order
central differences of DAQP on the re-condensed problem (step ``1e-3`` times the weight's largest
entry: DAQP's U carries ~1e-12 of rounding, and the inverted pendulum's R = 0.01 needs the relative
step; P follows the DARE where the problem says so).
Usage::

    python benchmarks/differentiable.py [--small] [--problems NAMES] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np

import mpc2nn

#: Smallest separation from an active-set switch of the states used for finite differences.
SEPARATION = 1e-3
#: Finite-difference steps: θ (relative to max(1, |θ_j|); the law is piecewise affine, only rounding
#: matters) and the weights (relative to their largest entry; fourth-order differences: truncation
#: ~h⁴, rounding ~1e-12/h, so 1e-9..1e-8 at 1e-3).
H_THETA, H_DATA = 1e-5, 1e-3


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Tools:
    """The three differentiable QP layers on one condensed QP, each ``θ (B, n_θ) tensor -> U (B, n_U)``."""

    def __init__(self, problem):
        import torch

        self.torch = torch
        self.layer = mpc2nn.MPCLayer(problem)
        self.qp = qp = self.layer.reference
        self.T = torch.eye(qp.n_z, dtype=torch.float64) if qp.output_map is None else torch.tensor(qp.output_map)
        self.cvx = self.qpth = None
        if have("cvxpylayers"):
            import cvxpy as cp
            from cvxpylayers.torch import CvxpyLayer

            z, th = cp.Variable(qp.n_z), cp.Parameter(qp.n_theta)
            objective = 0.5 * cp.quad_form(z, cp.psd_wrap(np.array(qp.H))) + (np.array(qp.F) @ th) @ z
            prob = cp.Problem(cp.Minimize(objective), [np.array(qp.G) @ z <= np.array(qp.w) + np.array(qp.E) @ th])
            self.cvx = CvxpyLayer(prob, parameters=[th], variables=[z],
                                  solver_args={"solve_method": "SCS", "eps": 1e-10, "max_iters": 100_000,
                                               "mode": "dense"})
        if have("qpth"):
            from qpth.qp import QPFunction

            self.qpth = QPFunction(verbose=-1)
            self.data = {k: torch.tensor(np.array(getattr(qp, k))) for k in ("H", "F", "G", "w", "E")}

    def run(self, tool: str, theta):
        """``U`` (B, n_U) of ``tool`` at ``theta``."""
        if tool == "mpc2nn":
            return self.layer(theta)
        if tool == "cvxpylayers":
            (z,) = self.cvx(theta)
            return z @ self.T.T
        d, empty = self.data, self.torch.empty(0, dtype=self.torch.float64)
        z = self.qpth(d["H"], theta @ d["F"].T, d["G"], d["w"] + theta @ d["E"].T, empty, empty)
        return z @ self.T.T

    def available(self) -> list:
        """The tools installed, mpc2nn first."""
        return ["mpc2nn"] + [k for k, v in (("cvxpylayers", self.cvx), ("qpth", self.qpth)) if v is not None]

    def forward_backward(self, tool: str, X: np.ndarray, g: np.ndarray):
        """Wall time of one forward + backward pass, and the NaN count of U and dθ."""
        torch = self.torch
        theta = torch.tensor(X, requires_grad=True)
        t0 = time.perf_counter()
        U = self.run(tool, theta)
        (U * torch.as_tensor(g)).sum().backward()
        elapsed = time.perf_counter() - t0
        return elapsed, int(torch.isnan(U).sum() + torch.isnan(theta.grad).sum())

    def jacobian(self, tool: str, X: np.ndarray) -> np.ndarray:
        """``(B, n_U, n_θ)`` by one backward pass per output."""
        torch = self.torch
        theta = torch.tensor(X, requires_grad=True)
        U = self.run(tool, theta)
        J = np.zeros((len(X), U.shape[1], X.shape[1]))
        for i in range(U.shape[1]):
            (gi,) = torch.autograd.grad(U[:, i].sum(), theta, retain_graph=True)
            J[:, i] = gi.numpy()
        return J


def steps(X) -> np.ndarray:
    """``(B, n_θ)`` finite-difference steps."""
    return H_THETA * np.maximum(1.0, np.abs(X))


def fd_jacobian(qp, X):
    """Central differences of DAQP's U in every θ entry, ``(B, n_U, n_θ)``."""
    J = np.zeros((len(X), qp.n_U, qp.n_theta))
    h = steps(X)
    for j in range(qp.n_theta):
        e = h[:, j:j + 1] * np.eye(qp.n_theta)[j]
        J[:, :, j] = (mpc2nn.solve_daqp(qp, X + e).U - mpc2nn.solve_daqp(qp, X - e).U) / (2 * h[:, j:j + 1])
    return J


def relative(J, J_ref, gain: float) -> np.ndarray:
    """Per state ``‖J - J_ref‖_max / max(‖J_ref‖_max, gain)``."""
    return np.abs(J - J_ref).max(axis=(1, 2)) / np.maximum(np.abs(J_ref).max(axis=(1, 2)), gain)


def fd_states(tools: Tools, X: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` states away from active-set switches whose active set is the same at θ ± h in every entry."""
    torch = tools.torch
    layer = tools.layer
    layer(torch.tensor(X))
    r = layer.last
    keep = np.flatnonzero(r.feasible & (r.separation > SEPARATION))
    Xk = X[keep]
    active = r.strongly_active[keep]
    same = np.ones(len(Xk), bool)
    h = steps(Xk)
    for j in range(X.shape[1]):
        for s in (1, -1):
            layer(torch.tensor(Xk + s * h[:, j:j + 1] * np.eye(X.shape[1])[j]))
            same &= (layer.last.strongly_active == active).all(axis=1)
    return Xk[same][:n]


def data_gradient_error(problem, X, seed=0) -> float:
    """Largest relative error of ``d(gᵀU)/dQ`` and ``d/dR`` (symmetric perturbations) against DAQP differences.

    Fourth-order central differences ``(f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h`` with ``h`` = H_DATA times
    the weight's largest entry. Entries whose perturbation would make the weight indefinite (zero
    diagonal entries of a semidefinite Q, and their rows) are left out.
    """
    import torch

    rng = np.random.default_rng(seed)
    layer = mpc2nn.MPCLayer(problem, learn=("Q", "R"))
    g = rng.normal(size=(len(X), layer.reference.n_U))
    (layer(torch.tensor(X)) * torch.tensor(g)).sum().backward()
    worst = 0.0
    for name in ("Q", "R"):
        grad = layer.learned[name].grad.numpy()
        grad = grad + grad.T - np.diag(np.diag(grad))
        base = np.asarray(getattr(problem, name), float)
        fd = np.full_like(base, np.nan)
        h = H_DATA * np.abs(base).max()
        for i, j in zip(*np.triu_indices(base.shape[0]), strict=True):
            d = np.zeros_like(base)
            d[i, j] = d[j, i] = h
            if min(np.linalg.eigvalsh(base + s * d)[0] for s in (2, -2)) < 0:
                continue
            f = {s: (mpc2nn.solve_daqp(problem.replace(**{name: base + s * d}), X).U * g).sum()
                 for s in (-2, -1, 1, 2)}
            fd[i, j] = fd[j, i] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
        used = np.isfinite(fd)
        worst = max(worst, float(np.abs(grad - fd)[used].max() / max(np.abs(fd[used]).max(), 1e-300)))
    return worst


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="two problems, batches 1 and 20, 4 states for gradients")
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: all public problems)")
    ap.add_argument("--batches", nargs="*", type=int, default=None, help="batch sizes (default 1 100 1000 10000)")
    ap.add_argument("--peer-max-batch", type=int, default=1000, help="largest batch run by cvxpylayers and qpth")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions of the mpc2nn timings (median)")
    ap.add_argument("--grad-states", type=int, default=20)
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    import torch

    all_problems = mpc2nn.systems.all_problems()
    names = args.problems or (["drummond2024_published", "double_integrator"] if args.small else list(all_problems))
    batches = args.batches or ([1, 20] if args.small else [1, 100, 1000, 10_000])
    n_grad = 4 if args.small else args.grad_states
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    import importlib.metadata

    versions = {m: importlib.metadata.version(m) for m in ("torch", "cvxpylayers", "diffcp", "qpth") if have(m)}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, BLAS threads env {threads}; float64; {versions}")
    missing = [m for m in ("cvxpylayers", "qpth") if not have(m)]
    if missing:
        print(f"# not installed, skipped: {missing}")
    print(f"# forward + backward of Σ g⊙U w.r.t. θ; mpc2nn median (and worst) of {args.repeats} runs, peers one "
          f"run, up to batch {args.peer_max_batch}; ratios peer / mpc2nn median")
    head = (f"{'problem':<24} {'batch':>6} {'mpc2nn [ms]':>12} {'(worst)':>8} {'cvxpylayers [ms]':>17} "
            f"{'qpth [ms]':>11} {'cvx/mpc2nn':>11} {'qpth/mpc2nn':>12} {'NaN m/c/q':>10}")
    print(head)
    print("-" * len(head))
    rows = []
    for name in names:
        problem = all_problems[name]()
        tools = Tools(problem)
        X_all = mpc2nn.sample_states(problem, max(batches), seed=0)
        g_all = np.random.default_rng(1).normal(size=(len(X_all), tools.qp.n_U))
        tools.forward_backward("mpc2nn", X_all[:1], g_all[:1])  # warm-up: compiles the network
        row = dict(problem=name, m=tools.qp.m, n_z=tools.qp.n_z, timing={}, nan={})
        for B in batches:
            X, g = X_all[:B], g_all[:B]
            t = {}
            nan = {}
            runs = [tools.forward_backward("mpc2nn", X, g) for _ in range(args.repeats)]
            t["mpc2nn"], nan["mpc2nn"] = float(np.median([r[0] for r in runs])), max(r[1] for r in runs)
            t["mpc2nn_worst"] = float(max(r[0] for r in runs))
            for tool in tools.available()[1:]:
                if B <= args.peer_max_batch:
                    print(f"  {tool} {name} batch {B} ...", file=sys.stderr, flush=True)
                    t[tool], nan[tool] = tools.forward_backward(tool, X, g)
            row["timing"][B], row["nan"][B] = t, nan

            def ms(k, t=t):
                return f"{1e3 * t[k]:.1f}" if k in t else "-"

            def ratio(k, t=t):
                return f"{t[k] / t['mpc2nn']:.0f}x" if k in t else "-"

            nans = "/".join(str(nan.get(k, "-")) for k in ("mpc2nn", "cvxpylayers", "qpth"))
            print(f"{name:<24} {B:>6} {ms('mpc2nn'):>12} {ms('mpc2nn_worst'):>8} {ms('cvxpylayers'):>17} "
                  f"{ms('qpth'):>11} {ratio('cvxpylayers'):>11} {ratio('qpth'):>12} {nans:>10}", flush=True)
        rows.append(row)

    print()
    print(f"# gradient accuracy: dU/dθ on states {SEPARATION:g} from active-set switches (relative, worst state); "
          f"d(gᵀU)/d(Q, R) against DAQP differences of the re-condensed problem")
    head = (f"{'problem':<24} {'states':>6} {'mpc2nn vs FD':>13} {'cvx vs FD':>10} {'qpth vs FD':>11} "
            f"{'mpc2nn vs cvx':>14} {'dQ,dR vs FD':>12}")
    print(head)
    print("-" * len(head))
    have_daqp = have("daqp")
    for row in rows:
        name = row["problem"]
        if not have_daqp:
            print(f"{name:<24} (daqp not installed: no finite differences)")
            continue
        problem = all_problems[name]()
        tools = Tools(problem)
        X = fd_states(tools, mpc2nn.sample_states(problem, 40 * n_grad, seed=2), n_grad)
        J_fd = fd_jacobian(tools.qp, X)
        qp = tools.qp
        gain = float(np.abs(qp.inputs((qp.H_inv @ qp.F).T)).max())
        acc = {"states": len(X), "gain": gain}
        J = {tool: tools.jacobian(tool, X) for tool in tools.available()}
        for tool, Jt in J.items():
            err = relative(Jt, J_fd, gain)
            acc[f"{tool}_vs_fd_max"], acc[f"{tool}_vs_fd_median"] = float(err.max()), float(np.median(err))
            acc[f"{tool}_nan"] = int(np.isnan(Jt).sum())
        if "cvxpylayers" in J:
            acc["mpc2nn_vs_cvxpylayers_max"] = float(relative(J["mpc2nn"], J["cvxpylayers"], gain).max())
        if isinstance(problem, mpc2nn.MPCProblem):
            acc["data_vs_fd_max"] = data_gradient_error(problem, X[:5])
        row["accuracy"] = acc

        def f(k, acc=acc):
            return f"{acc[k]:.1e}" if k in acc else "-"

        print(f"{name:<24} {len(X):>6} {f('mpc2nn_vs_fd_max'):>13} {f('cvxpylayers_vs_fd_max'):>10} "
              f"{f('qpth_vs_fd_max'):>11} {f('mpc2nn_vs_cvxpylayers_max'):>14} {f('data_vs_fd_max'):>12}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(platform=dict(cpus=os.cpu_count(), threads=threads, versions=versions), rows=rows), fh,
                      indent=1)
    return rows


if __name__ == "__main__":
    main()

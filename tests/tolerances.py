"""The one tolerance table of the test suite, keyed by (purpose, dtype).

Each entry says what it bounds; tests import :func:`tol` (or TOL) instead of writing literals.
A literal left in a test is local to it (a deliberate perturbation, a threshold the test is
about, a published number) and carries its reason in a comment.

"seen" is the largest value the suite met for that purpose (the smallest, for the lower
bounds ``visible`` and ``nonzero``), measured by recording every comparison made with a TOL
value while ``pytest tests`` ran (a throwaway plugin that wrapped the table's values; it is
not part of the repository). Most entries sit 1e2..1e4 above "seen"; the thinnest margins
are to_mpc (3.7x), acceptance (5x) and vs_osqp (12x).
"""

TOL = {
    # --- agreement with the reference solvers -------------------------------------------------
    # exact implicit solve vs OSQP at 1e-10 tolerances with polishing (also: a closed loop of the
    # network vs one of OSQP's MPC, where the per-solve bound is asserted over the whole run);
    # seen 8.1e-10 (1000 states per public problem, test_implicit), closed loops <= 5.4e-12
    ("vs_osqp", "float64"): 1e-8,
    # exact implicit solve vs DAQP (exact active set); seen 4.4e-12
    ("vs_daqp", "float64"): 1e-8,
    # a network's error sampled against DAQP vs mpc2nn.verify's certified upper bound: DAQP's agreement
    # (vs_daqp) plus the slack HiGHS's 1e-9 feasibility tolerance leaves in a MILP bound (the certificate
    # text: about 1e-9 times the big-M values, at most 1e-6 of u for M <= 1e3)
    ("verify_bound", "float64"): 1e-6,
    # the acceptance bound on |U - U_ref|; seen 1.9e-7 (OSQP on the condensed form,
    # test_qp) and 1.2e-7 (the cvxpy reference's OSQP vs its DAQP)
    ("acceptance", "float64"): 1e-6,
    # relative fixed-point / KKT residual of a certified exact solution (mpc2nn.CERTIFICATE_TOL);
    # seen 1.7e-11
    ("certificate", "float64"): 1e-9,
    # sum of the critical regions' volumes (qhull, from their vertices) vs the volume of the region they fill,
    # relative: vertices are accurate to about 1e-13 of the domain's scale
    ("volume", "float64"): 1e-9,
    # hard-constraint violation by a certified exact solution, DAQP's or polished OSQP's solution,
    # a closed loop driven by one of them, or a state of the LQR terminal set: input/state bounds,
    # input rates, held blocks, slacks >= 0, a slack that is zero in exact arithmetic, an active
    # bound met. Absolute, on bounds of size 0.1..10: the certificate's relative 1e-9 at unit
    # scale. Seen 6.4e-12 (the input-only row of a softened problem) and 4.9e-12 (the
    # quadcopter's roll bound in closed loop)
    ("feasibility", "float64"): 1e-9,
    # the same, measured on the plain numpy rollout of tests/reference_models.full_cost (x_k
    # recomputed from U over up to N = 20 steps, so state rows carry the rollout's round-off as
    # well as the solver's); seen 4.8e-11
    ("rollout_feasibility", "float64"): 1e-8,
    # the U of a network mapped back by mpc2nn.converse.to_qp (and its H, up to the one scale)
    # vs the original, relative to max(1, |U|): issue 5's bound; seen 9.8e-12 on U, 2.8e-11 on H
    ("round_trip", "float64"): 1e-8,
    # mpc2nn.converse.to_mpc's default tol: U of the recovered MPC and its read-back H, F and
    # bounds vs the original, relative (rows are read back with ROW_TOL = 1e-7; to_mpc's
    # docstring says why not 1e-8); seen 2.7e-8 on U (0.27 of it: the tightest margin here)
    ("to_mpc", "float64"): 1e-7,
    # relative residual and network mismatch that to_qp reports for an exact conversion (the
    # round-off of its symmetrisation, m <= 120); seen 4.5e-13
    ("converse_exact", "float64"): 1e-10,
    # the slacks' max / sum of an exact solve vs DAQP's, relative (atol: vs_daqp); sums over up
    # to 40 slacks of size up to ~10; seen 5.7e-9 absolute, 2e-4 of the allowance
    ("slack_vs_daqp", "float64"): 1e-7,
    # relative gap between two evaluations of the same optimal MPC cost when both are exact or
    # polished (OSQP's or DAQP's reported optimum, x'P0x from the Riccati recursion, numpy's
    # full_cost of the same U); seen 2.4e-13
    ("cost", "float64"): 1e-8,
    # relative gap of a cost against the reference's optimum across solvers and encodings
    # (CLARABEL's interior point, numpy's full_cost on the soft/rate/tracking/blocked model, the
    # full cost of the library's U vs DAQP's optimum); seen 8e-11
    ("cost_vs_reference", "float64"): 1e-7,
    # --- two computations of one quantity, no solver tolerance in between ------------------------
    # two exact computations of the same quantity (e.g. U for two step sizes, condensed vs rollout);
    # seen 5.2e-12
    ("same_math", "float64"): 1e-9,
    # residual of a small dense linear solve (lstsq, steady-state equations, n <= 16, O(1) data);
    # seen 1.5e-14
    ("linear_solve", "float64"): 1e-10,
    # one float64 quantity computed two ways (a sum in another order, the residual of an identity,
    # a proven bound plus the round-off of its own evaluation, matrices recomputed by a ZOH vs a
    # file's 17-digit decimals) on O(1)..O(100) numbers: ~1e4 ulps of headroom; seen 1.1e-14 (a
    # tail bound exceeded by that much), 1.3e-16 relative (a closed-loop cost summed by hand)
    ("roundoff", "float64"): 1e-12,
    # the same few float64 operations done twice (KKT residuals written out vs the library's,
    # piecewise-linear activations vs their targets, one dynamics step): a handful of ulps of
    # O(1)..O(200) values; seen exactly 0
    ("few_ulps", "float64"): 1e-14,
    # the lean forward of an explicit network (compiled kernel or numpy, mpc2nn.explicit._fast) vs its torch
    # forward, relative to max(1, |U|): the same float64 formulas with the products summed in another order,
    # through 10-30 layers of random (also unstable, ill-conditioned) problems; seen 3.9e-14 (60 random
    # problems, depth 12)
    ("lean_vs_torch", "float64"): 1e-10,
    # a matrix vs the exact decimals it should equal (a ZOH whose exact result is a short decimal,
    # weights copied into a file): a rounding or two of O(0.1..1) numbers (ulp(1) = 2.2e-16);
    # seen 8.7e-19
    ("decimals", "float64"): 1e-15,
    # an exported network (ONNX Runtime, TorchScript, compiled C) vs the torch network it came
    # from, absolute on |u| <= 10: the same float64 arithmetic in another order; seen 1.8e-15
    ("export", "float64"): 1e-12,
    # a float32 ONNX export vs the float64 network, relative to max(1, |u|) (float32 eps 1.2e-7
    # through a depth-25 ADMM network); seen 2.0e-6 absolute, 1.9 % of it
    ("export", "float32"): 1e-4,
    # --- closed loops -----------------------------------------------------------------------------
    # largest state gap between two closed loops whose controllers compute the same MPC law
    # (implicit network vs OSQP's MPC, exact soft penalty vs the hard network) over 25-60 steps:
    # each step's input gap passes through the dynamics into the next solve; seen 6.0e-10 (the
    # soft double integrator from (4, 2)), 2.0e-10 (quadcopter tracking)
    ("closed_loop", "float64"): 1e-7,
    # --- lower bounds: an effect is there ---------------------------------------------------------
    # a difference the test claims is real, not round-off (a mismatch to_qp/to_mpc report, a
    # positive slack, the quadratic penalty's gap or violation): 1e3 x every agreement tolerance
    # above; seen >= 1.07e-2 (the quadratic penalty's violation near the wall)
    ("visible", "float64"): 1e-3,
    # a quantity the test claims is nonzero (an active slack, two inputs that differ, a cycle
    # product != 1): 1e3 x feasibility / same_math, so a zero with round-off cannot pass; seen
    # >= 1.2e-2 where every state must pass it (counts of active slacks pass or not by design)
    ("nonzero", "float64"): 1e-6,
    # the torch condensation vs mpc2nn.condense, relative to max(1, max|entry|): the same formulas in
    # another library; seen 5e-16 (rounding of a few products)
    ("torch_condense", "float64"): 1e-12,
    # implicit-differentiation gradients vs central finite differences of DAQP solutions, relative to the
    # largest entry (the goal); seen 1e-10 on θ (piecewise affine, the error is DAQP's rounding / h)
    ("fd_daqp", "float64"): 1e-7,
    # torch.autograd.gradcheck of the layers (eps 1e-6): the forward passes are exact to ~1e-15, so the
    # finite-difference error is rounding / eps ~ 1e-9 and truncation eps² · curvature on the smooth data
    ("gradcheck_atol", "float64"): 1e-7,
    ("gradcheck_rtol", "float64"): 1e-6,
    # one law computed in two sets of units (states x' = T x, inputs u' = S u, T and S up to 1e±9): the QPs
    # differ by rounding amplified by cond(H) and by the Riccati solution's accuracy (~1e-10 relative)
    ("units", "float64"): 1e-7,
    # a proven error bound against DAQP's solution: only DAQP's own error (primal tolerance 1e-10) is allowed for
    ("bound_vs_daqp", "float64"): 1e-9,
}


def tol(purpose: str, dtype: str = "float64") -> float:
    """``TOL[purpose, dtype]``, float64 unless said; a KeyError names the known purposes."""
    try:
        return TOL[purpose, dtype]
    except KeyError:
        known = ", ".join(f"{p}/{d}" for p, d in sorted(TOL))
        raise KeyError(f"tests/tolerances.py has no tolerance ({purpose!r}, {dtype!r}); known: {known}") from None

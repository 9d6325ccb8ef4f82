"""The one tolerance table of the test suite, keyed by (purpose, dtype).

Each entry says what it bounds; tests import TOL instead of writing literals.
"""

TOL = {
    # exact implicit solve vs OSQP at 1e-10 tolerances with polishing
    ("vs_osqp", "float64"): 1e-8,
    # exact implicit solve vs DAQP (exact active set)
    ("vs_daqp", "float64"): 1e-8,
    # the acceptance bound on |U - U_ref|
    ("acceptance", "float64"): 1e-6,
    # relative fixed-point / KKT residual of a certified exact solution (mpc2nn.CERTIFICATE_TOL)
    ("certificate", "float64"): 1e-9,
    # two exact computations of the same quantity (e.g. U for two step sizes, condensed vs rollout)
    ("same_math", "float64"): 1e-9,
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
}

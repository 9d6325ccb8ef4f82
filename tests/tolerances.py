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
    # one law computed in two sets of units (states x' = T x, inputs u' = S u, T and S up to 1e±9): the QPs
    # differ by rounding amplified by cond(H) and by the Riccati solution's accuracy (~1e-10 relative)
    ("units", "float64"): 1e-7,
    # a proven error bound against DAQP's solution: only DAQP's own error (primal tolerance 1e-10) is allowed for
    ("bound_vs_daqp", "float64"): 1e-9,
}

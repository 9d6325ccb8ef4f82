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
    # sum of the critical regions' volumes (qhull, from their vertices) vs the volume of the region they fill,
    # relative: vertices are accurate to about 1e-13 of the domain's scale
    ("volume", "float64"): 1e-9,
    # two exact computations of the same quantity (e.g. U for two step sizes, condensed vs rollout)
    ("same_math", "float64"): 1e-9,
}

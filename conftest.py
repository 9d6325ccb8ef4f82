"""Pytest setup shared by tests/, doctests in mpc2nn/ and docs/.

BLAS threads are pinned to one before numpy loads: the suite works on small
matrices, where threads only contend (seen: 4.7 s instead of 0.06 s for one
converse call on a loaded 2-core machine).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

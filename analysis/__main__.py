import os
import sys

# The design matrices here are small (n x tens of columns). Multi-threaded BLAS on them is slower
# than one thread, and much slower on a busy machine (threads spin-wait): default to one thread
# unless the caller chose otherwise. Must happen before numpy is imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from analysis.cli import main  # noqa: E402  (after the thread settings, on purpose)

sys.exit(main())

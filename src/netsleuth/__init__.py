"""netsleuth: find where packets die and why receive load piles onto a few CPUs."""

import os

__version__ = "0.2.0"

# netsleuth does no linear algebra, but NumPy's OpenBLAS starts a thread per core at import
# and those threads poll: measured, ~2% of a scan's CPU time went to blas_thread_server
# (perf record), on the cores `scan --workers` wants. A caller's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

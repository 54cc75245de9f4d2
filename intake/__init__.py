"""intake: collection daemon for the '五小' roadshow submissions."""

import os

# matplotlib (the digest's chart) brings numpy, and openpyxl imports numpy whenever it
# is installed: its OpenBLAS would start a pool of threads in every intake process,
# the daemon that forks its judging children included. Nothing here does linear
# algebra; one thread, and no pool, is what the daemon wants (an operator's own
# setting stands).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

"""The one place that sets the thread budget of every pool from the settings (``TRIALCAST_THREADS``).

Why: on a 2-core laptop shared with other work, pools that each take every core (OpenMP in
LightGBM and BLAS, torch's intra-op pool, ONNX Runtime, the copy encoder's BLAS) spin against each
other and anything else running; a LightGBM fit measured 10-60x slower with 2 threads than with 1
(issue 17). So: every pool gets ``settings.threads`` at most, ONNX Runtime's and LightGBM's threads
sleep instead of spinning, and a fit smaller than ``SMALL_FIT_ROWS`` runs on one thread (a fit that
small gains nothing from a second core; measured in ``benchmarks/laptop.py``).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from features.config import Settings

# Below this many rows x features a LightGBM fit or a ridge solve runs on one thread. The sample
# (3,000 SKUs x ~100 features) and VISUELLE (5,080 products) are well under it.
SMALL_FIT_CELLS = 2_000_000

# Variables read by OpenMP / BLAS / tokenizers when they first load: set before any of them is
# imported (the CLI does it first), they make the budget hold for pools created later too.
_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_environment(threads: int) -> None:
    """Cap the pools that read the environment when they load (only those not loaded yet)."""
    for name in _ENV:
        os.environ.setdefault(name, str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep, not spin


def apply(settings: Settings) -> int:
    """Give every pool already loaded (BLAS / OpenMP through threadpoolctl, torch if imported) the
    settings' budget; the encoders and LightGBM get it as a parameter. Returns the budget."""
    from threadpoolctl import threadpool_limits

    threads = settings.threads
    set_environment(threads)
    threadpool_limits(threads)
    if "torch" in sys.modules:  # never import torch only to configure it
        torch = sys.modules["torch"]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return threads


def encoder_threads(settings: Settings, kind: str) -> int:
    """Threads of the picture (``image``) or copy (``text``) encoder."""
    return min(settings.threads, settings.copy_threads) if kind == "text" else settings.threads


def fit_threads(settings: Settings, rows: int, columns: int = 1) -> int:
    """Threads for one LightGBM fit or linear solve of that size: 1 when small, else the budget."""
    return 1 if rows * max(columns, 1) < SMALL_FIT_CELLS else settings.threads


@contextmanager
def limited(threads: int):
    """BLAS / OpenMP pools capped at ``threads`` inside the block (e.g. a small ridge solve)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        yield

"""The fits of a training run that do not depend on each other, side by side in processes or on Ray.

Why: once the loss is chosen, the holdout report, the backtest folds and the final refit are
independent work on different time slices; on one thread each (a retailer's history is under
``features.threads.SMALL_FIT_CELLS``), a 2-core laptop runs two at once instead of leaving a core
idle (3,000 SKUs: 34 s -> 25 s at load 1.6, ``benchmarks/laptop.py``). Processes, not threads: the feature
path holds the GIL in pandas. joblib's loky executor (cloudpickle for the tasks); each worker gets
an equal share of the thread budget, and every answer has the same bits as in one process
(tests/training/test_fits.py). ``train_workers=1`` runs them here, in order.

On a cluster (``features.engine.fits_on_ray``) the same tasks are Ray tasks, one per fit, so the
folds and the refit of a large history fit on as many machines at once. Why whole fits and not
LightGBM's data-parallel mode (or Ray Train): each fit here stays one machine's work with one
process's bits, and at 300k SKUs one fit is ~17 minutes on one core (``benchmarks/growth.py``
``boost``), where splitting histograms across machines pays only at tens of millions of rows. A
worker reads the copies training embedded ahead from a private cache file made of the entries the
driver sends (``CacheEntries``), so the cluster needs no access to the driver's cache; a task
writes nothing the driver reads, so Ray may retry one whose worker died.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from features.config import Settings
from features.engine import fits_on_ray

IDLE_SECONDS = 10  # a worker waiting this long for a task leaves (its parent was killed, or is gone)
RAY_RETRIES = 3  # times Ray runs a fit again whose worker died (tests/training/test_fits.py kills one)

Task = tuple[Callable[..., Any], tuple]
CacheEntries = tuple[str, dict[str, np.ndarray]]  # (encoder id, content key -> vector)


def workers_for(settings: Settings, tasks: int) -> int:
    """Processes for ``tasks`` independent fits: the setting, at most one per task and per core."""
    return max(1, min(settings.train_workers, tasks, os.cpu_count() or 1))


def _in_worker(function: Callable[..., Any], settings: Settings, args: tuple) -> Any:
    """One task in a worker process: the thread budget set first, as the parent set its own."""
    from features.threads import apply

    apply(settings)
    return function(*args, settings)


def _in_ray_worker(function: Callable[..., Any], settings_json: str, args: tuple,
                   entries: CacheEntries | None) -> Any:
    """One task on a Ray worker, reading embedded copies from a cache file of its own."""
    from features.cache import EmbeddingCache

    settings = Settings.model_validate_json(settings_json)
    with tempfile.TemporaryDirectory(prefix="trialcast-fit-") as folder:
        private = EmbeddingCache(Path(folder) / "entries.sqlite")
        try:
            if entries and entries[1]:
                private.put_many(*entries)
        finally:
            private.close()
        return _in_worker(function, settings.model_copy(update={"cache_file": private.path}), args)


def _on_ray(tasks: list[Task], settings: Settings, entries: CacheEntries | None) -> list[Any]:
    """Every task as a Ray task of ``threads / ray_workers`` CPUs, answers in task order."""
    import ray

    from features import engine

    share = settings.model_copy(update={"threads": max(1, settings.threads // settings.ray_workers),
                                        "train_workers": 1})
    with engine.ray_session(settings):
        # A worker that dies mid-fit (killed, out of memory, a lost node): Ray runs the task again.
        remote = ray.remote(num_cpus=share.threads, max_retries=RAY_RETRIES)(_in_ray_worker)
        shipped = ray.put(entries)  # once, not once per task
        return ray.get([remote.remote(function, engine.portable(share), args, shipped) for function, args in tasks])


def run_side_by_side(tasks: list[Task], settings: Settings, entries: CacheEntries | None = None) -> list[Any]:
    """``function(*args, settings)`` for every ``(function, args)`` task, answers in task order: on Ray
    when ``features.engine.fits_on_ray`` says so, else in up to ``train_workers`` processes (in this
    process when one would do). ``entries``: the cached copies the tasks read, for workers without
    this cache. A failing task raises here, as it would inline. The functions must be importable
    (module level), as they are pickled."""
    if fits_on_ray(settings):
        return _on_ray(tasks, settings, entries)
    workers = workers_for(settings, len(tasks))
    if workers == 1:
        return [function(*args, settings) for function, args in tasks]
    from joblib.externals.loky import ProcessPoolExecutor

    share = settings.model_copy(update={"threads": max(1, settings.threads // workers), "train_workers": 1})
    # An executor of this run's own, closed when the stage ends: no worker outlives the run (a reusable
    # pool would keep its processes, and the caller's stdout, for minutes). A worker whose parent was
    # killed mid-stage ends its task and leaves after ``IDLE_SECONDS``; whatever it wrote (the content-
    # keyed embedding cache) is written in whole transactions.
    with ProcessPoolExecutor(max_workers=workers, timeout=IDLE_SECONDS) as pool:
        futures = [pool.submit(_in_worker, function, share, args) for function, args in tasks]
        return [future.result() for future in futures]

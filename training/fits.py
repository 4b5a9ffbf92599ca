"""The fits of a training run that do not depend on each other, side by side in processes.

Why: once the loss is chosen, the holdout report, the backtest folds and the final refit are
independent work on different time slices; on one thread each (a retailer's history is under
``features.threads.SMALL_FIT_CELLS``), a 2-core laptop runs two at once instead of leaving a core
idle (3,000 SKUs: 34 s -> 25 s at load 1.6, ``benchmarks/laptop.py``). Processes, not threads: the feature
path holds the GIL in pandas. joblib's loky executor (cloudpickle for the tasks); each worker gets
an equal share of the thread budget, and every answer has the same bits as in one process
(tests/training/test_fits.py). ``train_workers=1`` runs them here, in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from features.config import Settings

IDLE_SECONDS = 10  # a worker waiting this long for a task leaves (its parent was killed, or is gone)


def workers_for(settings: Settings, tasks: int) -> int:
    """Processes for ``tasks`` independent fits: the setting, at most one per task and per core."""
    return max(1, min(settings.train_workers, tasks, os.cpu_count() or 1))


def _in_worker(function: Callable[..., Any], settings: Settings, args: tuple) -> Any:
    """One task in a worker process: the thread budget set first, as the parent set its own."""
    from features.threads import apply

    apply(settings)
    return function(*args, settings)


Task = tuple[Callable[..., Any], tuple]


def run_side_by_side(tasks: list[Task], settings: Settings) -> list[Any]:
    """``function(*args, settings)`` for every ``(function, args)`` task, answers in task order, in up
    to ``train_workers`` processes (in this process when one would do). A failing task raises here,
    as it would inline. The functions must be importable (module level), as joblib pickles them."""
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

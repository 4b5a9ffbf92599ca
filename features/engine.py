"""Where a large job runs: in this process, or as a Ray Data pipeline on a local Ray or a cluster.

One rule for every step that may run on Ray (embedding here and in ``features.embed``, batch
scoring in ``serving.scale``, training's independent fits in ``training.fits``): ``local`` never
uses Ray, ``ray`` always does, ``auto`` does from a size measured on this kind of machine up
(below it, starting Ray and loading a network or model in each worker costs more than it saves:
``benchmarks/growth.py`` and ``benchmarks/scale_scoring.py`` measure where; for the fits, only
when a cluster is configured). The cluster is ``RAY_ADDRESS`` or
``Settings.ray_address``; without one Ray starts here with ``ray_workers`` CPUs and stops after
the job. The job's results always come back to this process, which writes them to the one source
of truth (the embedding cache, the scores' part files), so a cluster needs no access to them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from features.config import Settings

Engine = Literal["auto", "local", "ray"]


def use_ray(engine: Engine, items: int, min_items: int) -> bool:
    """Whether a job of ``items`` runs on Ray under that engine choice."""
    return engine == "ray" or (engine == "auto" and items >= min_items)


def cluster_address(settings: Settings) -> str | None:
    """The Ray cluster configured for this process (``RAY_ADDRESS`` wins), or None."""
    return os.environ.get("RAY_ADDRESS") or settings.ray_address


def fits_on_ray(settings: Settings) -> bool:
    """Whether training's independent fits run as Ray tasks: ``ray`` always, ``auto`` only with a
    cluster configured. On one machine Ray's workers are the same cores the fits' own processes use:
    the sample trains in 18.9 s with two local processes, 23.6 s with Ray tasks (``benchmarks/growth.py
    --steps train-local2 train-ray2``)."""
    return settings.train_engine == "ray" or (settings.train_engine == "auto" and cluster_address(settings) is not None)


# The environment a local Ray's own processes start with, on top of this process's (its head
# processes are started by ``ray.init``, its workers by its raylet, which passes it on). Ray 2.60.0
# starts a dashboard process even with ``include_dashboard=False``; its usage module asks the cloud
# metadata services who hosts the machine (``169.254.169.254`` twice, ``metadata.google.internal``,
# ``ray._common.usage.usage_lib.get_cloud_from_metadata_requests``) whether or not usage stats are
# on, and no setting of Ray's skips it. Its HTTP client (``requests``) honours ``all_proxy``: a
# closed loopback port refuses the request there, and Ray takes the cloud to be "unknown". Ray's
# processes talk to each other on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``,
# ``features/offline.py``), which ``no_proxy`` keeps direct; gRPC does not read ``all_proxy``.
LOCAL_RAY_ENV = {"all_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost,::1"}


@contextmanager
def ray_session(settings: Settings) -> Iterator[None]:
    """Ray connected for the block: the configured cluster, else a local Ray stopped afterwards."""
    import ray

    started = not ray.is_initialized()
    if started:
        address = cluster_address(settings)
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:  # Ray runs its workers at nice 15; on a shared laptop they starved (see README)
            os.environ.setdefault("RAY_worker_niceness", "0")
            saved = {name: os.environ.get(name) for name in LOCAL_RAY_ENV}
            os.environ.update(LOCAL_RAY_ENV)
            try:
                ray.init(include_dashboard=False, log_to_driver=False, num_cpus=settings.ray_workers)
            finally:  # only Ray's processes keep it; this one's own clients are left as they were
                for name, value in saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def portable(settings: Settings) -> str:
    """The settings as a worker receives them: absolute paths (a worker's current directory is
    not the driver's), as JSON."""
    return settings.model_copy(update={
        "home": settings.home.resolve(),
        "cache_file": settings.cache_file.resolve() if settings.cache_file else None,
    }).model_dump_json()

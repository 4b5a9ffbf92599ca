"""Batch scoring on Ray: the chunks a run still needs, scored by a pool of Ray Data actors that each
load the model once, into the very ``OUT.parts/`` layout of ``serving.batch`` (one parquet file per
chunk, written atomically). So the single-process and the Ray run are one code path: the same
``score_rows`` on the same chunks, the same resume after a kill, the same final file.

- Where: ``RAY_ADDRESS`` or ``Settings.ray_address`` (an existing cluster: ``ray start`` or KubeRay),
  else a local Ray started here with ``ray_workers`` CPUs, stopped after the run.
- When: ``Settings.score_engine``: ``local`` never, ``ray`` always, ``auto`` from
  ``ray_min_rows`` rows up (below that, starting Ray and loading the model in each worker costs
  more than it saves; ``benchmarks/scale_scoring.py`` measures where).
- A worker that dies mid-chunk: Ray restarts the actor and runs the chunk again; the chunk's part
  file is only ever written whole (rename), so every row comes out once.
- Each actor loads the registered version the run started with (by number, not by alias), so a
  champion promoted mid-run cannot mix two models in one file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from features.config import Settings


def use_ray(settings: Settings, rows: int) -> bool:
    """Whether a batch of ``rows`` is scored on Ray under the settings' engine choice."""
    if settings.score_engine == "ray":
        return True
    return settings.score_engine == "auto" and rows >= settings.ray_min_rows


class ChunkScorer:
    """A Ray Data actor: the candidates table and the model loaded once; scores whole chunks."""

    def __init__(self, settings_json: str, version: str, candidates: str, parts: str):
        from features.catalogue import read_table
        from features.model import load_version, version_by_number
        from serving.predictor import Predictor

        settings = Settings.model_validate_json(settings_json)
        model = load_version(settings, version_by_number(settings, version))
        model.check_encoders(settings)
        self.predictor = Predictor(model, settings, version)
        raw = read_table(Path(candidates))
        self.raw = raw.astype(object).where(raw.notna(), None)
        self.root, self.parts = Path(candidates).parent, Path(parts)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from serving.batch import write_chunk

        for start, rows in zip(batch["start"], batch["rows"]):
            write_chunk(self.raw, int(start), int(rows), self.root, self.predictor, self.parts)
        return {"start": batch["start"], "pid": [os.getpid()] * len(batch["start"])}


def score_chunks(candidates: Path, parts: Path, work: list[tuple[int, int]], settings: Settings,
                 version: str) -> pd.DataFrame:
    """Score the ``(start, rows)`` chunks on Ray into ``parts``; returns which worker did which."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS") or settings.ray_address
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": settings.ray_workers}))
    # Absolute paths: a worker's current directory is not the driver's.
    absolute = settings.model_copy(update={"home": settings.home.resolve(),
                                           "cache_file": settings.cache_file.resolve() if settings.cache_file else None})
    try:
        items = ray.data.from_items([{"start": s, "rows": n} for s, n in work])
        done = items.map_batches(
            ChunkScorer, batch_size=1, concurrency=settings.ray_workers, num_cpus=1,
            fn_constructor_args=(absolute.model_dump_json(), str(version), str(candidates.resolve()), str(parts.resolve())),
        ).to_pandas()  # Ray Data restarts a dead actor and retries its chunk (max_restarts=-1 by default)
    finally:
        if started:
            ray.shutdown()
    return done

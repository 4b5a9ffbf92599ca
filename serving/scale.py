"""Batch scoring on Ray: the chunks a run still needs, scored by a pool of Ray Data actors that each
load the model once, into the very ``OUT.parts/`` layout of ``serving.batch`` (one parquet file per
chunk, written atomically). So the single-process and the Ray run are one code path: the same
``score_rows`` on the same chunks, the same resume after a kill, the same final file.

- Where and when: ``features.engine`` (``Settings.score_engine``, ``auto`` from ``ray_min_rows``
  rows up; ``benchmarks/scale_scoring.py`` measures where Ray starts to pay).
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

from features import engine
from features.config import Settings


def use_ray(settings: Settings, rows: int) -> bool:
    """Whether a batch of ``rows`` is scored on Ray under the settings' engine choice."""
    return engine.use_ray(settings.score_engine, rows, settings.ray_min_rows)


class ChunkScorer:
    """A Ray Data actor: the candidates table and the model loaded once; scores whole chunks."""

    def __init__(self, settings_json: str, version: str, candidates: str, parts: str, by_name: bool = False):
        from features.catalogue import read_table
        from serving.batch import picture_index
        from features.model import load_version, version_by_number
        from serving.predictor import Predictor

        settings = Settings.model_validate_json(settings_json)
        model = load_version(settings, version_by_number(settings, version))
        model.check_encoders(settings)
        self.predictor = Predictor(model, settings, version)
        raw = read_table(Path(candidates))
        self.raw = raw.astype(object).where(raw.notna(), None)
        self.root, self.parts = Path(candidates).parent, Path(parts)
        self.index = picture_index(self.root) if by_name else None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from serving.batch import write_chunk

        for start, rows in zip(batch["start"], batch["rows"]):
            write_chunk(self.raw, int(start), int(rows), self.root, self.predictor, self.parts, self.index)
        return {"start": batch["start"], "pid": [os.getpid()] * len(batch["start"])}


def score_chunks(candidates: Path, parts: Path, work: list[tuple[int, int]], settings: Settings,
                 version: str, by_name: bool = False) -> pd.DataFrame:
    """Score the ``(start, rows)`` chunks on Ray into ``parts``; returns which worker did which."""
    import ray

    with engine.ray_session(settings):
        items = ray.data.from_items([{"start": s, "rows": n} for s, n in work], override_num_blocks=len(work))
        done = items.map_batches(
            ChunkScorer, batch_size=1, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=settings.ray_workers),
            fn_constructor_args=(engine.portable(settings), str(version), str(candidates.resolve()), str(parts.resolve()),
                                 by_name),
        ).to_pandas()  # Ray Data restarts a dead actor and retries its chunk (max_restarts=-1 by default)
    return done

"""What each absent optional field costs: the holdout scored again with one field removed at a time.

Each optional field of the schema (``features.schema.ABSENT``) is blanked on every holdout launch and
the launches are forecast through the same path serving uses; WAPE, bias of the total and P10-P90
coverage say what leaving that field out costs a merchandiser. An absent description changes the
copy embedding (title alone), so those launches are embedded again, through the cache.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.cache import EmbeddingCache
from features.config import Settings
from features.embed import Embeddings, embed_copy
from features.schema import ABSENT
from training.evaluate import interval_metrics, point_metrics


def blank(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``frame`` with ``column`` absent on every row, as a merchandiser leaving it out sends it."""
    out = frame.copy()
    if column == "list_price":
        out[column] = float("nan")
    elif column == "launch_date":
        out[column] = pd.NaT
    else:
        out[column] = "" if column == "description" else None
    return out


def absence_costs(fitted: Any, frame: pd.DataFrame, embeddings: Any, settings: Settings) -> dict[str, dict[str, float]]:
    """{field: {wape, bias, coverage_p10_p90}} on ``frame`` (the holdout) with that field absent.

    ``fitted`` is anything with ``predict(frame, embeddings, today=...)`` returning p10/p50/p90. An
    absent launch date means "today"; for launches in the past, today is the day their forecasts
    would have been made: the holdout's first launch day, when the model in ``fitted`` was current."""
    target = fitted.pipeline.target
    today = pd.Timestamp(frame["launch_date"].min()).date()
    y = frame[target].to_numpy(dtype=float)
    out: dict[str, dict[str, float]] = {}
    for column in ABSENT:
        blanked = blank(frame, column)
        vectors = embeddings
        if column == "description":
            cache = EmbeddingCache(settings.cache_path)
            try:
                copy = embed_copy(blanked, settings, cache=cache)
            finally:
                cache.close()
            vectors = Embeddings(embeddings.picture, copy, embeddings.picture_encoder, embeddings.copy_encoder)
        forecast = fitted.predict(blanked, vectors, today=today)
        point = point_metrics(y, forecast["p50"].to_numpy())
        band = interval_metrics(y, forecast["p10"].to_numpy(), forecast["p90"].to_numpy())
        out[column] = {"wape": point["wape"], "bias": point["bias"], "coverage_p10_p90": band["coverage_p10_p90"]}
    return out

"""Load a catalogue with its embeddings, and cut it by time (never at random)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.cache import EmbeddingCache
from features.catalogue import (
    DEFAULT_SPEC,
    Catalogue,
    CatalogueSpec,
    load_catalogue,
    validate_frame,
)
from features.config import Settings
from features.embed import Embeddings, embed_frame


@dataclass
class Dataset:
    catalogue: Catalogue
    embeddings: Embeddings
    fingerprint: str

    @property
    def frame(self) -> pd.DataFrame:
        return self.catalogue.frame

    def subset(self, mask: np.ndarray) -> Dataset:
        frame = self.frame[mask].reset_index(drop=True)
        e = self.embeddings
        sub = Embeddings(e.picture[mask], e.copy[mask], e.picture_encoder, e.copy_encoder)
        return Dataset(Catalogue(frame, self.catalogue.root, self.catalogue.spec), sub, self.fingerprint)


def fingerprint(catalogue: Catalogue) -> str:
    """Hash of the catalogue's content (rows and picture bytes' paths/sizes), order-independent."""
    frame = catalogue.frame.sort_values("sku_id").drop(columns=["image_path"], errors="ignore")
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    for path in sorted(p for p in catalogue.frame["image_path"].dropna()):
        digest.update(f"{Path(path).name}:{Path(path).stat().st_size}".encode())
    return digest.hexdigest()[:16]


def load_dataset(
    path: str | Path, settings: Settings, *, spec: CatalogueSpec = DEFAULT_SPEC, progress: bool = True
) -> Dataset:
    """Validate the catalogue, then embed it through the cache (only new pictures and copy are computed)."""
    return embed_catalogue(load_history(path, settings, spec=spec), settings, progress=progress)


def history_spec(settings: Settings, spec: CatalogueSpec = DEFAULT_SPEC) -> CatalogueSpec:
    """``spec`` with the attribute columns the settings name (None: every extra text column)."""
    return replace(spec, attributes=settings.attribute_names())


def load_history(path: str | Path, settings: Settings, *, spec: CatalogueSpec = DEFAULT_SPEC,
                 sales: str | Path | None = None) -> Catalogue:
    """The validated catalogue in launch order (no embedding yet: its fingerprint is known first);
    ``sales``: daily sales rows that give it its target (``features.daily``)."""
    catalogue = load_catalogue(
        path,
        spec=history_spec(settings, spec),
        sales=sales,
        max_text_chars=settings.max_text_chars,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
    )
    catalogue.frame = catalogue.frame.sort_values(["launch_date", "sku_id"], kind="stable").reset_index(drop=True)
    return catalogue


def with_launches(catalogue: Catalogue, settings: Settings) -> tuple[Catalogue, dict]:
    """The history plus every launched SKU whose first 7 days of actuals are in the forecast log
    (``features.ledger.history``), checked by the same catalogue contract as the file. A SKU the
    catalogue already holds keeps the catalogue's row (a person's file beats the log); a launch that
    breaks the contract is left out and reported with its reason, never silently."""
    from features.ledger import open_ledger
    from features.ledger.history import history_rows

    folder = settings.home / "launches"
    raw, left_out = history_rows(open_ledger(settings), folder)
    report = {"launches": len(raw) + len(left_out), "added": 0, "in_catalogue": 0, "left_out": left_out}
    if raw.empty:
        return catalogue, report
    known = set(catalogue.frame["sku_id"].astype(str))
    ours = raw["sku_id"].isin(known).to_numpy()
    report["in_catalogue"] = int(ours.sum())
    raw = raw[~ours].reset_index(drop=True)
    for column in catalogue.spec.attributes or ():  # the log keeps no attributes: absent for these launches
        if column not in raw:
            raw[column] = None
    frame, _ = validate_frame(raw.drop(columns="forecast_id"), folder, spec=catalogue.spec,
                                     max_text_chars=settings.max_text_chars, max_image_bytes=settings.max_image_bytes,
                                     max_image_pixels=settings.max_image_pixels)
    bad = frame["row_error"].notna().to_numpy() if len(frame) else np.zeros(0, bool)
    for number in np.flatnonzero(bad):
        report["left_out"].append({"forecast_id": raw.loc[number, "forecast_id"], "sku_id": raw.loc[number, "sku_id"],
                                   "reason": frame.loc[number, "row_error"]})
    frame = frame[~bad].drop(columns="row_error").reindex(columns=catalogue.frame.columns)
    report["added"] = len(frame)
    merged = pd.concat([catalogue.frame, frame], ignore_index=True)
    merged = merged.sort_values(["launch_date", "sku_id"], kind="stable").reset_index(drop=True)
    return Catalogue(merged, catalogue.root, catalogue.spec), report


def embed_catalogue(catalogue: Catalogue, settings: Settings, *, progress: bool = True) -> Dataset:
    """Embed a validated catalogue through the cache."""
    cache = EmbeddingCache(settings.cache_path)
    try:
        embeddings = embed_frame(catalogue.frame, settings, cache=cache, progress=progress)
    finally:
        cache.close()
    return Dataset(catalogue, embeddings, fingerprint(catalogue))


def time_cut(frame: pd.DataFrame, fraction: float) -> pd.Timestamp:
    """The launch date from which the most recent ``fraction`` of SKUs start."""
    dates = pd.to_datetime(frame["launch_date"]).sort_values().reset_index(drop=True)
    return dates.iloc[int(len(dates) * (1 - fraction))]


def holdout_split(frame: pd.DataFrame, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks (train, holdout): the holdout is every SKU launched on or after the cut date."""
    cut = time_cut(frame, fraction)
    holdout = (pd.to_datetime(frame["launch_date"]) >= cut).to_numpy()
    return ~holdout, holdout


def rolling_origins(frame: pd.DataFrame, folds: int, horizon: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling-origin backtest: each fold trains on everything before an origin and tests on the
    next ``horizon`` share of launches; the last fold ends where the holdout begins."""
    dates = pd.to_datetime(frame["launch_date"])
    ordered = dates.sort_values().reset_index(drop=True)
    out = []
    for f in range(folds):
        end = 1.0 - horizon * (folds - 1 - f)
        start = end - horizon
        lo = ordered.iloc[int(len(ordered) * start)]
        hi = ordered.iloc[min(int(len(ordered) * end), len(ordered) - 1)]
        test = ((dates >= lo) & (dates < hi)).to_numpy()
        train = (dates < lo).to_numpy()
        out.append((train, test))
    return out

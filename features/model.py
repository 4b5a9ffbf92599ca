"""A trained trialcast model as plain files, and its loader: training writes it, serving reads it.

Nothing in a saved model is a pickle, so a refactor of the training code cannot break a registered
model, and reading one needs only this package (never ``training``). The folder (format 2):

- ``format.json``: ``{"format": "trialcast-model", "format_version": 2, "written_by": ...,
  "encoders": {"image": {"name", "id"}, "text": {"name", "id"}}, "feature_names": [...],
  "meta": {...}}``. ``meta`` holds the training facts serving shows: ``gate`` (metric, value,
  threshold, bias, max_abs_bias, passed, reasons), ``train_end``, ``trained_on``, ``holdout``,
  ``baselines``, ``loss``, ``fingerprint``.
- ``pipeline/``: the fitted feature path (``FeaturePipeline.save``, files listed in
  ``features.assemble``).
- ``forecaster/``: the boosters as LightGBM model text and their calibration
  (``QuantileBoosters.save``, files listed in ``features.forecast``).
- ``thumbnails.parquet``: ``sku_id`` (string), ``jpeg`` (bytes): pictures of the past SKUs shown
  as analogs.

A model in another format (the pickled bundles of format 1 have no ``format.json``) is refused with
``ModelFormatError``: one line saying what is wrong and the command to run. In the MLflow registry
the folder is the pyfunc model's artifact ``model`` (``artifacts/model/`` of the model version);
``load_registered`` fetches it by alias without writing anything to the store.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.assemble import OVERRIDE, FeaturePipeline, overrides_of
from features.cache import EmbeddingCache
from features.config import Settings, tracking_uri
from features.embed import Embeddings, embed_frame
from features.encoders import get_encoder
from features.files import read_json, read_table, write_json, write_table
from features.forecast import QuantileBoosters, like_items_shift
from features.novelty import Floors, agrees, stand_in_candidates
from features.why import contributions, explain

FORMAT = "trialcast-model"
FORMAT_VERSION = 2
RETRAIN = "trialcast train CATALOGUE"
ARTIFACT = "model"  # the pyfunc artifact (and folder name) that holds a saved Model


class ModelFormatError(ValueError):
    """A saved model this code cannot read; the message is one line ending in what to run."""


class ModelNotFound(ValueError):
    """No registry, no registered model, or no version behind the alias (train one)."""


@dataclass
class Model:
    """Everything a forecast needs: the fitted feature path, the boosters, the encoder names the
    model was trained with, the training facts (``meta``) and the analogs' thumbnails."""

    pipeline: FeaturePipeline
    forecaster: QuantileBoosters
    image_encoder: str  # encoder names from the settings that trained it
    text_encoder: str
    meta: dict[str, Any] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        return self.pipeline.categories["category"]

    def settings_for_encoding(self, settings: Settings) -> Settings:
        """The serving settings, with the encoders this model was trained on (never others)."""
        return settings.model_copy(update={"image_encoder": self.image_encoder, "text_encoder": self.text_encoder})

    def check_encoders(self, settings: Settings) -> None:
        s = self.settings_for_encoding(settings)
        ids = tuple(get_encoder(name, kind, s.threads, s.home).id
                    for name, kind in ((s.image_encoder, "image"), (s.text_encoder, "text")))
        wanted = (self.pipeline.picture_encoder, self.pipeline.copy_encoder)
        if ids != wanted:
            raise RuntimeError(f"installed encoders {ids} differ from the ones the model was trained with {wanted}")

    def predict_frame(self, frame: pd.DataFrame, embeddings: Embeddings, today: date | None = None) -> pd.DataFrame:
        """P10/P50/P90 of validated rows whose embeddings are already computed (``today`` stands in
        for an absent launch date, as in ``FeaturePipeline.transform``)."""
        return self.forecaster.predict(self.pipeline.transform(frame, embeddings, today=today))

    def forecast(
        self,
        frame: pd.DataFrame,
        settings: Settings,
        *,
        images: list[bytes | None] | None = None,
        cache: EmbeddingCache | None = None,
        show: int = 5,
    ) -> list[dict[str, Any]]:
        """Forecast validated SKU rows: P10/P50/P90, the sales curve, the most similar past SKUs, what
        was assumed for absent inputs, how novel each SKU is per modality, and why (contributions)."""
        given = embed_frame(frame, self.settings_for_encoding(settings), images=images, cache=cache)
        pipeline = self.pipeline
        completed = pipeline.complete(frame, given)
        # What the forecast reads: a picture or copy below its novelty floor stood in for (junk is not demand).
        embeddings, stood_in = self.stand_in(completed, given)
        # Completed once, and one analog search answers the features, the curve, the SKUs shown and
        # (when no row excludes or pins analogs) novelty: the same numbers as each part on its own (tested).
        found = pipeline.search(completed, embeddings)
        features = pipeline.transform(completed, embeddings, found=found, completed=True)
        matrix = self.forecaster.matrix(features)  # converted once for the 3 boosters and the "why"
        quantiles = self.forecaster.predict(features, matrix)
        curve = pipeline.curve(completed, embeddings, found["joint"])
        similar = pipeline.similar(completed, embeddings, show, found["joint"] if show <= pipeline.k else None)
        plain = not any(o is not None for o in overrides_of(completed) or []) and not any(stood_in)
        novelty = pipeline.novelty(completed, given, found if plain else None, completed=True)  # of what was given
        why = self._why(features, quantiles, similar, matrix)
        out = []
        for i in range(len(frame)):
            p50 = float(quantiles["p50"].iloc[i])
            analogs = similar[i]
            out.append({
                "p10": float(quantiles["p10"].iloc[i]), "p50": p50, "p90": float(quantiles["p90"].iloc[i]),
                "curve": [] if curve is None else [round(p50 * float(x), 2) for x in curve[i]],
                "analogs": analogs,
                "top_similarity": analogs[0]["similarity"] if analogs else None,
                "close_analogs": int(np.nan_to_num(features["joint_n_close"].iloc[i])),
                "inputs": _used_inputs(completed.iloc[i]),
                "novelty": {**self._novelty(novelty.iloc[i]), "stood_in": stood_in[i]},
                "why": why[i],
                "override": _override_of(completed, i, analogs),
            })
        return out

    def stand_in(self, frame: pd.DataFrame, embeddings: Embeddings) -> tuple[Embeddings, list[list[str]]]:
        """The embeddings the forecast reads, and per row which modalities were stood in for.

        A picture or copy below its novelty floor is read as the candidate that
        ``features.novelty.stand_in_candidates`` offers with the lowest P50: nothing about an
        unlike picture is evidence of demand, so it never earns the benefit of the doubt. Each row
        is scored with its own candidates only: alone or in a batch alike."""
        floors = Floors(**(self.meta.get("novelty") or {"picture": None, "copy": None, "category_share": None}))
        if floors.picture is None and floors.copy is None:
            return embeddings, [[] for _ in range(len(frame))]
        p = self.pipeline
        which, candidates = stand_in_candidates(p.index, p.history["category"].astype(str).to_numpy(),
                                                embeddings.picture, embeddings.copy, frame["launch_date"],
                                                frame["category"].astype(str), floors)
        if not candidates:
            return embeddings, which
        rows = np.concatenate([np.full(len(pair[0]), i) for i, pair in candidates.items()])
        tried = replace(embeddings, picture=np.vstack([pair[0] for pair in candidates.values()]).astype(np.float32),
                        copy=np.vstack([pair[1] for pair in candidates.values()]).astype(np.float32))
        p50 = self.forecaster.predict(p.transform(frame.iloc[rows].reset_index(drop=True), tried,
                                                  completed=True))["p50"].to_numpy()
        picture, copy = embeddings.picture.copy(), embeddings.copy.copy()
        for i in candidates:
            best = np.flatnonzero(rows == i)[np.argmin(p50[rows == i])]
            picture[i], copy[i] = tried.picture[best], tried.copy[best]
        return replace(embeddings, picture=picture, copy=copy), which

    def _why(self, features: pd.DataFrame, quantiles: pd.DataFrame, similar: list[list[dict]],
             matrix: np.ndarray | None = None) -> list[dict]:
        """Contributions of the point booster per SKU, grouped (features.why)."""
        f = self.forecaster
        parts = contributions(f.boosters["point"], features, matrix)
        start = f.start_units(features, parts["expected"].to_numpy())
        if f.analog_weight > 0:  # the lean on the like-item rule is the analogs' doing too
            point = f.start_units(features, parts.sum(axis=1).to_numpy()) / f.scale
            parts["analogs"] = parts.get("analogs", 0.0) + like_items_shift(features, point, f.analog_weight)
        return [explain(parts.iloc[i], float(start[i]), float(quantiles["p50"].iloc[i]),
                        [a["sales"] for a in similar[i]]) for i in range(len(features))]

    def _novelty(self, row: pd.Series) -> dict[str, Any]:
        """Per-modality similarity, the floors it is held to, and whether picture and category agree."""
        floors = Floors(**(self.meta.get("novelty") or {"picture": None, "copy": None, "category_share": None}))

        def num(x: Any) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 4)

        return {"joint": num(row["joint"]), "picture": num(row["picture"]), "copy": num(row["copy"]),
                "picture_floor": floors.picture, "copy_floor": floors.copy,
                "category": row["category"], "picture_category": row["picture_category"],
                "category_share": num(row["category_share"]),
                "category_agrees": agrees(row["category_share"], row["picture_category"], row["category"],
                                          floors.category_share)}

    def save(self, folder: Path) -> None:
        """Write the folder described in the module docstring."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.pipeline.save(folder / "pipeline")
        self.forecaster.save(folder / "forecaster")
        thumbs = pd.DataFrame({"sku_id": list(self.thumbnails), "jpeg": list(self.thumbnails.values())},
                              columns=["sku_id", "jpeg"])
        write_table(folder / "thumbnails.parquet", thumbs)
        write_json(folder / "format.json", {
            "format": FORMAT, "format_version": FORMAT_VERSION, "written_by": _written_by(),
            "encoders": {"image": {"name": self.image_encoder, "id": self.pipeline.picture_encoder},
                         "text": {"name": self.text_encoder, "id": self.pipeline.copy_encoder}},
            "feature_names": self.pipeline.feature_names, "meta": self.meta,
        })

    @classmethod
    def load(cls, folder: Path) -> Model:
        """Read a saved model; ``ModelFormatError`` (one line) for anything but a complete format 2."""
        folder = Path(folder)
        header = _check_format(folder)
        try:
            pipeline = FeaturePipeline.load(folder / "pipeline")
            forecaster = QuantileBoosters.load(folder / "forecaster")
            thumbs = read_table(folder / "thumbnails.parquet")
        except FileNotFoundError as error:
            raise ModelFormatError(f"the model in {folder} is incomplete ({Path(error.filename).name} is missing); "
                                   f"retrain it: `{RETRAIN}`") from None
        encoders = header["encoders"]
        return cls(pipeline, forecaster, encoders["image"]["name"], encoders["text"]["name"], header["meta"],
                   dict(zip(thumbs["sku_id"].astype(str), thumbs["jpeg"])))


def _override_of(frame: pd.DataFrame, i: int, analogs: list[dict]) -> dict[str, Any] | None:
    """What a person changed in the analog set, and which pins could be used (launched early enough)."""
    override = frame[OVERRIDE].iloc[i] if OVERRIDE in frame else None
    if not override:
        return None
    shown = {a["sku_id"] for a in analogs}
    for a in analogs:
        a["pinned"] = a["sku_id"] in override.pin
    return {"excluded": list(override.exclude), "pinned": [s for s in override.pin if s in shown],
            "not_usable": [s for s in override.pin if s not in shown]}


def _used_inputs(row: pd.Series) -> dict[str, Any]:
    """The values the forecast used for the optional inputs, and which of them were assumed."""
    assumed = {name: bool(row.get(f"{name}_assumed", False)) for name in ("list_price", "category", "launch_date")}
    assumed["description"] = not str(row.get("description") or "").strip()
    return {"list_price": round(float(row["list_price"]), 2) if np.isfinite(row["list_price"]) else None,
            "category": row["category"], "launch_date": pd.Timestamp(row["launch_date"]).date().isoformat(),
            "description": "", "assumed": [name for name, flag in assumed.items() if flag]}


def _written_by() -> str:
    try:
        return f"trialcast {version('trialcast')}"
    except PackageNotFoundError:
        return "trialcast (not installed)"


def _check_format(folder: Path) -> dict[str, Any]:
    """format.json of a model this code reads, or ``ModelFormatError`` naming what is wrong."""
    if not (folder / "format.json").is_file():
        raise ModelFormatError(f"{folder} holds no format.json: the model was written by an older trialcast "
                               f"(format 1, a pickle) that this one cannot read; retrain it: `{RETRAIN}`")
    header = read_json(folder / "format.json")
    if header.get("format") != FORMAT:
        raise ModelFormatError(f"{folder} is not a trialcast model (format {header.get('format')!r}); "
                               f"train one: `{RETRAIN}`")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"the model in {folder} is in format version {header.get('format_version')}, and "
                               f"this trialcast reads version {FORMAT_VERSION} only; retrain it: `{RETRAIN}`")
    return header


# ---------------------------------------------------------------- the registry (MLflow, imported lazily)
def _client(settings: Settings) -> Any:
    """A client bound to this store (never to MLflow's process-wide URIs), reads only."""
    from mlflow import MlflowClient

    uri = tracking_uri(settings)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def find_version(settings: Settings, alias: str = "champion") -> Any:
    """The registered model version behind ``alias`` (an MLflow ``ModelVersion``), read only: no
    experiment, run or store is created (a missing SQLite store stays missing)."""
    from mlflow.exceptions import MlflowException

    from features.store import relocate

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ModelNotFound(f"no model registry at {uri}; train a model: `{RETRAIN}`")
    relocate(settings)  # a moved or copied home reads its own artifacts
    try:
        return _client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ModelNotFound(f"no model {settings.model_name}@{alias} in {uri} ({error.message}); "
                                f"train one: `{RETRAIN}`") from None
        raise


def fetch_version(settings: Settings, model_version: Any) -> Path:
    """The model version's artifacts in a local folder under ``home/models`` (downloaded once:
    into a temporary folder, then renamed into place, so a reader never sees half a model)."""
    from mlflow.artifacts import download_artifacts

    root = settings.home / "models"
    target = root / f"{model_version.name}-v{model_version.version}-{model_version.run_id or 'no-run'}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
        # The storage location, not a models:/ URI: MLflow resolves those through the process-wide
        # registry URI, which is not necessarily this store (and may be created by asking).
        source = _client(settings).get_model_version_download_uri(model_version.name, model_version.version)
        local = download_artifacts(artifact_uri=source, dst_path=str(Path(tmp) / "model"))
        try:
            os.rename(local, target)
        except OSError:
            if not target.is_dir():  # not another process's download that won the race
                raise
    return target


def version_by_number(settings: Settings, number: str) -> Any:
    """The registered model version ``number`` (an MLflow ``ModelVersion``), read only."""
    return _client(settings).get_model_version(settings.model_name, str(number))


def load_version(settings: Settings, model_version: Any) -> Model:
    """The ``Model`` of a registered version; ``ModelFormatError`` names the version."""
    folder = fetch_version(settings, model_version)
    try:
        return Model.load(folder / "artifacts" / ARTIFACT)
    except ModelFormatError as error:
        raise ModelFormatError(f"registered model '{model_version.name}' version {model_version.version}: "
                               f"{error}") from None


def load_registered(settings: Settings, alias: str = "champion") -> tuple[Model, Any]:
    """The model behind a registry alias and its model version, without side effects on the store."""
    model_version = find_version(settings, alias)
    return load_version(settings, model_version), model_version

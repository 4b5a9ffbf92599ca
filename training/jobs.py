"""The jobs the CLI and MLproject run: train (and retrain), evaluate, promote.

A killed job leaves the registry as it was, or recoverable: everything is computed and logged
first, the registry (a version with its intended decision, then the alias, then the decision) is
written last, and every train / retrain starts by finishing what a killed one left
(``registry.recover``: runs left RUNNING closed as FAILED, an undecided version decided).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from PIL import Image

from features.catalogue import DEFAULT_SPEC
from features.config import Settings
from features.model import (
    Model,
    ModelFormatError,
    ModelNotFound,
    find_version,
    load_registered,
    load_version,
)
from training import registry
from training.data import (
    Dataset,
    embed_catalogue,
    fingerprint,
    load_dataset,
    load_history,
    with_launches,
)
from training.evaluate import interval_metrics, level_stage_metrics, point_metrics
from training.gate import GateDecision, advice, check_gate
from training.train import TrainResult, train


def config_hash(settings: Settings) -> str:
    """What, besides the data, decides the model: the model-shaping group of the settings."""
    return settings.model_hash()


THUMBNAIL_PX = 128


def gate_of_settings(metrics: dict[str, float], settings: Settings) -> GateDecision:
    """The gate the settings describe (metric, threshold, level, stage, bias, GO bounds) on ``metrics``."""
    return check_gate(metrics, settings.gate_metric, settings.gate_threshold, settings.gate_max_abs_bias,
                      settings.gate_min_go_precision, settings.gate_min_go_recall, settings.gate_level,
                      settings.gate_stage)


def thumbnail(path: str | float | None) -> bytes | None:
    """A small JPEG of a past SKU's picture: the model carries these to show analogs."""
    if not isinstance(path, str) or not path:  # a past SKU without a picture (None, or NaN in a frame)
        return None
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        return buffer.getvalue()


def load_model(settings: Settings, alias: str = registry.CHAMPION) -> tuple[Model, Any]:
    """The model behind a registry alias, and its model version (the features loader: the same
    one serving uses). ``ModelNotFound`` when there is none, ``ModelFormatError`` when unreadable."""
    return load_registered(settings, alias)


def _champion_value(settings: Settings, data: Dataset, holdout: pd.DataFrame, target: str,
                    challenger_value: float) -> tuple[float | None, float, str]:
    """The champion's gate metric and this run's on the same launches, and how they were compared.

    When enough of this run's holdout launched after the champion's training data ended, both
    models are scored on exactly those launches (actual sales from ``data``: never shuffled
    targets). Otherwise the champion saw the holdout, and only its recorded holdout value is fair,
    against this run's holdout value. Returns (champion value or None, challenger value, how).
    """
    try:
        version = find_version(settings)
    except (ModelNotFound, MlflowException):
        return None, challenger_value, "no champion yet"
    recorded = float(version.tags.get("gate.value", "nan"))
    where = (version.tags.get("gate.level", "sku"), version.tags.get("gate.stage", "pre_launch"))
    if where != (settings.gate_level, settings.gate_stage):  # another gate: its number measures something else
        return None, challenger_value, (f"champion v{version.version} was gated at {where[0]}, {where[1]}: "
                                        "not comparable, the gate of these settings decides")
    try:
        model = load_version(settings, version)
    except ModelFormatError:  # an older format: retraining is the fix, so only its number counts
        return recorded, challenger_value, f"champion v{version.version}'s recorded holdout value (older model format)"
    holdout_start = pd.Timestamp(holdout["launch_date"].min())
    mask = (data.frame["launch_date"] >= holdout_start).to_numpy()
    seen_until = pd.Timestamp(model.meta.get("train_end", "1970-01-01"))
    unseen = mask & (data.frame["launch_date"] > seen_until).to_numpy()
    if unseen.sum() >= max(20, mask.sum() // 2):
        part = data.subset(unseen)
        try:
            forecast = model.predict_frame(part.frame, part.embeddings)
        except ValueError:  # the champion was trained on other encoders: it cannot read these vectors
            return recorded, challenger_value, f"champion v{version.version}'s recorded holdout value (other encoders)"
        mine = holdout.set_index("sku_id")["p50"].reindex(part.frame["sku_id"]).to_numpy(float)
        y = part.frame[target].to_numpy(float)
        champion_metric = point_metrics(y, forecast["p50"].to_numpy())[settings.gate_metric]
        challenger_metric = point_metrics(y, mine)[settings.gate_metric]
        return (champion_metric, challenger_metric,
                f"both scored on {int(unseen.sum())} holdout launches after champion v{version.version}'s training data")
    # The champion was trained on these launches: only its recorded holdout number is fair.
    return recorded, challenger_value, f"champion v{version.version}'s recorded holdout value"


def build_model(result: TrainResult, data: Dataset, settings: Settings, gate: GateDecision) -> Model:
    """The servable model of a training run: the final fit, its encoders, the numbers serving shows
    and decides with (gate, holdout, novelty floors, absence costs) and the past SKUs' thumbnails."""
    thumbs = {sku: t for sku, path in zip(data.frame["sku_id"], data.frame["image_path"]) if (t := thumbnail(path))}
    return Model(
        result.final.pipeline, result.final.forecaster, settings.image_encoder, settings.text_encoder,
        meta={"train_end": result.train_end, "trained_on": len(data.frame), "gate": gate.as_dict(),
              "holdout": result.holdout_metrics, "baselines": result.baseline_metrics, "loss": result.loss,
              "fingerprint": data.fingerprint, "novelty": result.floors.as_dict() if result.floors else None,
              "absence": result.absence},
        thumbnails=thumbs,
    )


def run_train(catalogue: str | Path, settings: Settings, *, retrain: bool = False, shuffle_target: bool = False,
              launches: bool = False, progress: bool = True, echo=print,
              sales: str | Path | None = None) -> dict[str, Any]:
    """Train, evaluate, gate, log and register. With ``retrain``, a snapshot already trained with
    the same configuration is a no-op. With ``launches``, the launched SKUs whose first 7 days are
    in the forecast log join the history (``training.data.with_launches``): the snapshot then
    changes as launches complete, so a retrain is a no-op only when nothing new has sold.
    ``sales``: daily sales rows that give the catalogue its target (``features.daily``)."""
    client = registry.connect(settings)
    recovered = registry.recover(client, settings)
    for run_id in recovered["closed_runs"]:
        echo(f"closed run {run_id} as FAILED: the process that ran it was killed")
    for version, alias, reason in recovered["decided"]:
        echo(f"version {version} -> {alias}: {reason}")
    history = load_history(catalogue, settings, spec=DEFAULT_SPEC, sales=sales)
    for note in history.notes:
        echo(note)
    joined = None
    if launches:
        history, joined = with_launches(history, settings)
        echo(f"forecast log: {joined['added']} launched SKUs join the history ({joined['in_catalogue']} already "
             f"in the catalogue, {len(joined['left_out'])} left out)")
        for item in joined["left_out"]:
            echo(f"  left out: {item['sku_id']} (forecast {item['forecast_id']}): {item['reason']}")
    snapshot, cfg = fingerprint(history), config_hash(settings)
    if retrain:  # decided before embedding: a no-op costs a catalogue check, not an embedding pass
        done = client.search_model_versions(
            f"name = '{settings.model_name}' and tags.data_fingerprint = '{snapshot}' and tags.config_hash = '{cfg}'"
        )
        if done:
            v = max(done, key=lambda mv: int(mv.version))
            echo(f"no-op: snapshot {snapshot} was already trained as version {v.version} ({v.tags.get('decision')})")
            return {"noop": True, "version": str(v.version), "fingerprint": snapshot, "launches": joined}
    data = embed_catalogue(history, settings, progress=progress)
    echo(f"catalogue {catalogue}: {len(data.frame)} SKUs, fingerprint {data.fingerprint}, "
         f"{data.embeddings.computed} new embeddings")

    result = train(data, settings, shuffle_target=shuffle_target, progress=progress)
    gate = gate_of_settings(result.holdout_metrics, settings)
    champion_value, challenger_value, compared = _champion_value(
        settings, data, result.holdout, data.catalogue.spec.target, gate.value)
    model = build_model(result, data, settings, gate)
    logged = registry.log_run(result, model, gate, data.fingerprint, settings, str(catalogue))
    tags = {"data_fingerprint": data.fingerprint, "config_hash": cfg, "compared_with": compared}
    version, alias, reason = registry.register(client, logged, gate, settings, champion_value, tags,
                                               challenger_value=challenger_value)
    summary = {
        "noop": False, "version": version, "alias": alias, "reason": reason, "run_id": logged.run_id,
        "gate": gate.as_dict(), "loss": result.loss, "loss_comparison": result.loss_comparison,
        "holdout": {k: v for k, v in result.holdout_metrics.items() if "category/" not in k},
        "baselines": {n: {k: v for k, v in m.items() if "category/" not in k} for n, m in result.baseline_metrics.items()},
        "backtest": result.backtest, "fingerprint": data.fingerprint, "absence": result.absence, "launches": joined,
    }
    echo(f"version {version} -> {alias}: {reason}")
    if not gate.passed:
        summary["advice"] = advice(gate.as_dict(), result.holdout_metrics, len(data.frame))
        for line in summary["advice"]:
            echo(line)
    return summary


def evaluate_registered(catalogue: str | Path, settings: Settings, alias: str = registry.CHAMPION,
                        progress: bool = True) -> dict[str, Any]:
    """Score a registered model on the launches of ``catalogue`` that it never saw (launched after
    its training data ended): is its error still under the gate on new launches?"""
    model, version = load_model(settings, alias)
    # Embed with the encoders this model was trained on, whatever the settings say now.
    data = load_dataset(catalogue, model.settings_for_encoding(settings), progress=progress)
    unseen = (data.frame["launch_date"] > pd.Timestamp(model.meta["train_end"])).to_numpy()
    out: dict[str, Any] = {"version": version.version, "alias": alias, "train_end": model.meta["train_end"],
                           "n_unseen": int(unseen.sum()), "recorded_gate": model.meta["gate"]}
    if not unseen.any():
        out["message"] = "no launches after the model's training data: nothing new to evaluate"
        return out
    part = data.subset(unseen)
    forecast = model.predict_frame(part.frame, part.embeddings)
    y = part.frame[data.catalogue.spec.target].to_numpy(float)
    p50 = forecast["p50"].to_numpy()
    curve, columns = model.pipeline.curve(part.frame, part.embeddings), data.catalogue.curve_columns
    daily = curve is not None and bool(columns)
    metrics = {**point_metrics(y, p50), **interval_metrics(y, forecast["p10"].to_numpy(), forecast["p90"].to_numpy()),
               **level_stage_metrics(y, p50, part.frame["category"], part.frame["launch_date"],
                                     curve * p50[:, None] if daily else None,
                                     part.frame[columns].to_numpy(float) if daily else None)}
    gate = check_gate(metrics, settings.gate_metric, settings.gate_threshold, settings.gate_max_abs_bias,
                      level=settings.gate_level, stage=settings.gate_stage)
    out.update({"metrics": metrics, "gate": gate.as_dict()})
    return out


def promote(settings: Settings, version: str, *, force: bool = False) -> dict[str, Any]:
    """Point ``champion`` at a version (promotion or rollback); refuses a version the gate refused."""
    client = registry.connect(settings)
    mv = client.get_model_version(settings.model_name, str(version))
    if mv.tags.get("gate.passed") != "true" and not force:
        raise ValueError(f"version {version} did not pass the gate ({mv.tags.get('gate.reasons')}); use --force to override")
    previous = registry.champion(client, settings)
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, mv.version)
    client.set_model_version_tag(settings.model_name, mv.version, "decision",
                                 f"champion: promoted by hand{' (forced past the gate)' if force else ''}")
    return {"champion": str(mv.version), "previous": str(previous.version) if previous else None}


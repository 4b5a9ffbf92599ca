"""The saved model is plain files (features.model): save -> load gives the very same bits, the
registered model holds no pickle, a model in another format is refused in one line naming the
command to run, and loading the champion writes nothing to the registry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.assemble import FeaturePipeline
from features.forecast import QuantileBoosters
from features.model import FORMAT_VERSION, RETRAIN, Model, ModelFormatError

FIT_ROWS, SCORED_ROWS = 900, 12


@pytest.fixture(scope="module")
def fitted(trained: dict) -> dict:
    """A model fitted on the sample's first launches (the real feature path and forecaster, small),
    and rows it scores: the last launches of the sample."""
    from training.data import load_dataset
    from training.train import fit

    settings = trained["settings"]
    data = load_dataset(trained["sample"] / "catalogue.parquet", settings, progress=False)
    rows = np.arange(len(data.frame))
    fit_part, scored = data.subset(rows < FIT_ROWS), data.subset(rows >= len(rows) - SCORED_ROWS)
    result, _ = fit(fit_part, settings, ("log_l2",))
    model = Model(result.pipeline, result.forecaster, settings.image_encoder, settings.text_encoder,
                  meta={"gate": {"metric": "wape", "value": 0.12, "passed": True, "reasons": []}, "train_end": "2024-01-31"},
                  thumbnails={"S00001": b"\xff\xd8not-really-a-jpeg"})
    return {"model": model, "data": fit_part, "scored": scored, "settings": settings}


def test_save_then_load_gives_the_same_features_and_quantiles_bit_for_bit(fitted: dict, tmp_path: Path) -> None:
    model, scored = fitted["model"], fitted["scored"]
    model.save(tmp_path / "model")
    loaded = Model.load(tmp_path / "model")
    before = model.pipeline.transform(scored.frame, scored.embeddings)
    after = loaded.pipeline.transform(scored.frame, scored.embeddings)
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    pd.testing.assert_frame_equal(loaded.predict_frame(scored.frame, scored.embeddings),
                                  model.predict_frame(scored.frame, scored.embeddings), check_exact=True)
    assert (loaded.meta, loaded.thumbnails) == (model.meta, model.thumbnails)
    assert (loaded.image_encoder, loaded.text_encoder) == (model.image_encoder, model.text_encoder)
    pd.testing.assert_frame_equal(loaded.pipeline.history, model.pipeline.history)
    # The analogs shown (index and history) are the same too.
    assert loaded.pipeline.similar(scored.frame, scored.embeddings, 5) == model.pipeline.similar(
        scored.frame, scored.embeddings, 5)


def test_early_stopped_boosters_round_trip_too(fitted: dict, tmp_path: Path) -> None:
    """A calibrated (not refit) forecaster's boosters know their best round from early stopping;
    read back from model text they do not (``best_iteration`` -1), and must forecast the same."""
    from training.forecaster import Forecaster

    data = fitted["data"]
    X = fitted["model"].pipeline.transform(data.frame, data.embeddings)
    y = data.frame["sales_7d"].to_numpy(dtype=float)
    calibrated = Forecaster("log_l2", 1).calibrate(X[:700], y[:700], X[700:], y[700:])
    assert any(b.best_iteration > 0 for b in calibrated.boosters.values())
    calibrated.save(tmp_path)
    loaded = QuantileBoosters.load(tmp_path)
    assert all(b.best_iteration <= 0 for b in loaded.boosters.values())
    pd.testing.assert_frame_equal(loaded.predict(X), calibrated.predict(X), check_exact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "booster_lower.txt", "booster_point.txt", "booster_upper.txt", "forecaster.json"]


def test_pipeline_fields_are_saved_generically(fitted: dict, tmp_path: Path) -> None:
    """A field added to the pipeline later (here: per-category launch costs) is saved and read back
    without touching the writer, as the per-category markups were."""

    @dataclass
    class WithLaunchCosts(FeaturePipeline):
        launch_costs: dict[str, float] = field(default_factory=dict)

    pipeline = fitted["model"].pipeline
    extended = WithLaunchCosts(**{f.name: getattr(pipeline, f.name) for f in fields(pipeline)},
                               launch_costs={"T恤": 12000.0})
    extended.save(tmp_path)
    stored = json.loads((tmp_path / "pipeline.json").read_text(encoding="utf-8"))
    assert stored["launch_costs"] == {"T恤": 12000.0} and stored["markups"] == pipeline.markups
    assert WithLaunchCosts.load(tmp_path).launch_costs == {"T恤": 12000.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history.parquet", "index.npz", "pipeline.json", "projection.json", "projection.npz"]


def test_format_json_names_the_format_encoders_and_features(fitted: dict, tmp_path: Path) -> None:
    model = fitted["model"]
    model.save(tmp_path / "model")
    header = json.loads((tmp_path / "model" / "format.json").read_text(encoding="utf-8"))
    assert header["format"] == "trialcast-model" and header["format_version"] == FORMAT_VERSION == 2
    assert header["encoders"]["image"] == {"name": model.image_encoder, "id": model.pipeline.picture_encoder}
    assert header["feature_names"] == model.pipeline.feature_names
    assert header["meta"]["gate"]["value"] == 0.12


# ---------------------------------------------------------------- other formats are refused
def _refusal(folder: Path) -> str:
    with pytest.raises(ModelFormatError) as caught:
        Model.load(folder)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in message and f"`{RETRAIN}`" in message, message
    return message


def test_a_pickled_bundle_without_format_json_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bundle.joblib").write_bytes(b"\x80\x04not read")
    assert "older trialcast" in _refusal(tmp_path)


def test_another_format_version_is_refused_in_one_line(fitted: dict, tmp_path: Path) -> None:
    fitted["model"].save(tmp_path / "model")
    header = tmp_path / "model" / "format.json"
    header.write_text(json.dumps({**json.loads(header.read_text()), "format_version": 1}))
    assert "format version 1" in _refusal(tmp_path / "model")


def test_an_incomplete_model_is_refused_in_one_line(fitted: dict, tmp_path: Path) -> None:
    fitted["model"].save(tmp_path / "model")
    (tmp_path / "model" / "pipeline" / "index.npz").unlink()
    assert "index.npz is missing" in _refusal(tmp_path / "model")


# ---------------------------------------------------------------- the registered model
def test_the_registered_model_holds_plain_files_and_pins_its_requirements(trained: dict) -> None:
    from features.model import fetch_version, find_version

    settings = trained["settings"]
    folder = fetch_version(settings, find_version(settings))
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith((".pkl", ".joblib", ".pickle", ".cloudpickle"))], files
    assert {"MLmodel", "pyfunc.py", "requirements.txt", "code/features/model.py", "artifacts/model/format.json",
            "artifacts/model/thumbnails.parquet", "artifacts/model/forecaster/booster_point.txt",
            "artifacts/model/pipeline/index.npz", "artifacts/model/pipeline/projection.npz"} <= files
    requirements = (folder / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in requirements and any(r.startswith("lightgbm==") for r in requirements)
    from mlflow.models import Model as MlflowModel

    signature = MlflowModel.load(folder / "MLmodel").signature
    assert {"title", "image", "cost_price"} <= set(signature.inputs.input_names())
    assert {"p10", "p50", "p90"} <= set(signature.outputs.input_names())
    assert [p.name for p in signature.params.params] == ["root"]


def _store(settings) -> dict:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(settings.mlflow_uri, settings.mlflow_uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    return {
        "experiments": sorted((e.experiment_id, e.name, e.lifecycle_stage) for e in experiments),
        "runs": sorted((r.info.run_id, r.info.status, r.info.end_time) for r in runs),
        "versions": sorted((v.name, v.version, v.last_updated_timestamp, tuple(sorted(v.tags.items())))
                           for v in client.search_model_versions()),
        "models": sorted((m.name, m.last_updated_timestamp, tuple(sorted(m.aliases.items())))
                         for m in client.search_registered_models()),
    }


def test_loading_the_champion_writes_nothing_to_the_registry(trained: dict, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from features.config import Settings
    from features.model import ModelNotFound, load_registered
    from serving.champion import load_champion

    settings = trained["settings"]
    before = _store(settings)
    predictor, message = load_champion(settings)
    assert predictor is not None, message
    load_registered(settings)
    assert _store(settings) == before
    # And an empty home stays empty: no SQLite store is created to find there is no model.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    empty = Settings(home=tmp_path / "empty")
    with pytest.raises(ModelNotFound):
        load_registered(empty)
    assert load_champion(empty)[0] is None
    assert not (tmp_path / "empty" / "mlflow.db").exists()

"""Settings decide the model by construction: the retrain hash and the MLflow params come from one
group of the settings object, so no setting that shapes a model can be forgotten by a key list."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from features.config import ModelSettings, Settings


def _changed(name: str, value: object) -> object:
    """Another valid value for a setting, whatever its type."""
    allowed = get_args(ModelSettings.model_fields[name].annotation)
    if allowed:  # a Literal: another of its values
        return next(v for v in allowed if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if name != "default_markup" else value + 0.5
    return f"{value}-other"


MODEL_FIELDS = sorted(ModelSettings.model_fields)


@pytest.mark.parametrize("name", MODEL_FIELDS)
def test_changing_any_model_shaping_setting_changes_the_hash_and_the_logged_params(name: str) -> None:
    default = Settings()
    changed = Settings(**{name: _changed(name, getattr(default, name))})
    assert changed.model_hash() != default.model_hash()
    assert changed.model_settings()[name] != default.model_settings()[name]
    assert set(changed.model_settings()) == set(MODEL_FIELDS)


def test_the_group_holds_what_shapes_a_model_and_nothing_that_only_changes_speed_or_the_answer() -> None:
    for name in ("projection_components", "analog_k", "image_encoder", "mask_share", "gate_threshold",
                 "launch_cost", "ood_similarity", "gate_min_go_precision"):  # the decision is gated too
        assert name in MODEL_FIELDS
    for name in ("threads", "batch_size", "home", "analog_show", "max_text_chars", "model_name"):
        assert name not in MODEL_FIELDS
    assert Settings(threads=1, batch_size=3, analog_show=2).model_hash() == Settings().model_hash()


def test_model_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALCAST_PROJECTION_COMPONENTS", "64")
    assert Settings().projection_components == 64
    assert Settings().model_hash() != Settings(projection_components=128).model_hash()


class _WouldTrain(Exception):
    pass


@pytest.fixture(scope="module")
def checked_history() -> dict:
    """``training.jobs.load_history`` remembered by its inputs (path, spec and the catalogue limits,
    the only settings it reads): the retrain tests below check the 3,000-SKU sample once per limit
    values instead of twice per setting. Same inputs, same validated catalogue (a deep copy each)."""
    return {}


def _remembering(memo: dict, load):
    import copy

    def load_history(path, settings: Settings, *, spec, sales=None):
        key = (str(path), repr(spec), str(sales), settings.max_text_chars, settings.max_image_bytes,
               settings.max_image_pixels)
        if key not in memo:
            memo[key] = load(path, settings, spec=spec, sales=sales)
        return copy.deepcopy(memo[key])

    return load_history


@pytest.mark.parametrize("name", MODEL_FIELDS)
def test_retrain_after_changing_any_model_setting_trains_again(name: str, trained: dict, checked_history: dict,
                                                               monkeypatch) -> None:
    """On the trained sample home, `retrain` of the same snapshot is a no-op with the same settings
    and goes on to embed and train with any model-shaping setting changed (stopped right there)."""
    from training import jobs

    def stop(*_args, **_kwargs):
        raise _WouldTrain

    monkeypatch.setattr(jobs, "embed_catalogue", stop)
    monkeypatch.setattr(jobs, "load_history", _remembering(checked_history, jobs.load_history))
    settings: Settings = trained["settings"]
    catalogue = Path(trained["sample"]) / "catalogue.parquet"
    same = jobs.run_train(catalogue, settings, retrain=True, progress=False, echo=lambda *_: None)
    assert same["noop"] is True
    changed = settings.model_copy(update={name: _changed(name, getattr(settings, name))})
    with pytest.raises(_WouldTrain):
        jobs.run_train(catalogue, changed, retrain=True, progress=False, echo=lambda *_: None)

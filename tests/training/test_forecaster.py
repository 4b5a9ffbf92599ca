"""Work done once: the P10/P90 boosters do not depend on the point loss, so a training run fits
them once and hands them to every candidate loss; the result is the same bits as fitting each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import Settings
from features.threads import SMALL_FIT_CELLS, encoder_threads, fit_threads
from training.forecaster import LOSSES, Forecaster


@pytest.fixture(scope="module")
def folds() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(900, 6)), columns=[f"f{i}" for i in range(6)])
    y = np.round(np.expm1(2 + X["f0"] - 0.5 * X["f1"] + rng.normal(0, 0.4, len(X))).clip(0))
    return X[:600], y[:600], X[600:], y[600:]


def test_quantile_boosters_fitted_once_give_the_same_bits(folds, monkeypatch) -> None:
    from training import forecaster

    X_fit, y_fit, X_cal, y_cal = folds
    alone = {loss: Forecaster(loss, 1).calibrate(X_fit, y_fit, X_cal, y_cal) for loss in LOSSES}
    fits = []
    train = forecaster._train
    monkeypatch.setattr(forecaster, "_train", lambda params, *a, **k: fits.append(params["objective"]) or
                        train(params, *a, **k))
    shared, quantiles = {}, None
    for loss in LOSSES:
        shared[loss] = Forecaster(loss, 1).calibrate(X_fit, y_fit, X_cal, y_cal, quantiles)
        quantiles = shared[loss].quantile_boosters
    assert fits.count("quantile") == 2 and len(fits) == 2 + len(LOSSES)  # 5 boosters, not 9
    for loss in LOSSES:
        pd.testing.assert_frame_equal(shared[loss].predict(X_cal), alone[loss].predict(X_cal), check_exact=True)
        assert (shared[loss].rounds, shared[loss].widen, shared[loss].scale) == (
            alone[loss].rounds, alone[loss].widen, alone[loss].scale)


def test_small_fits_run_on_one_thread() -> None:
    settings = Settings(threads=2)
    assert fit_threads(settings, 3000, 120) == 1
    assert fit_threads(settings, SMALL_FIT_CELLS, 1) == 2
    assert fit_threads(Settings(threads=1), 10**7, 100) == 1


def test_the_copy_encoder_gets_its_own_cap_within_the_budget() -> None:
    assert encoder_threads(Settings(threads=2), "text") == 1
    assert encoder_threads(Settings(threads=2), "image") == 2
    assert encoder_threads(Settings(threads=1, copy_threads=4), "text") == 1

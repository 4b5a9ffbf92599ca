"""The ridge read-out's memory at scale (features/projection.py): PCA axes fitted on a spread
sample of rows past PCA_MAX_ROWS, and vectors projected a block at a time. Below both sizes the
numbers are the bits of one pass; past them, the same read-out to within float rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import projection
from features.projection import TimeHonestRidge


def _history(n: int = 1200, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 40))
    family = rng.integers(0, 12, n)
    picture = (centres[family] + rng.normal(size=(n, 40))).astype(np.float32)
    picture[rng.random(n) < 0.1] = np.nan  # SKUs without a picture
    copy = (centres[family][:, :16] + rng.normal(size=(n, 16))).astype(np.float32)
    frame = pd.DataFrame({
        "launch_date": pd.Timestamp("2022-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 700, n)), unit="D"),
        "category": np.array(["T恤", "外套", "衬衫"])[family % 3],
        "cost_price": rng.uniform(20, 200, n),
    })
    frame["list_price"] = frame["cost_price"] * 2.5
    log_sales = 3 + centres[family, 0] * 0.3 + rng.normal(0, 0.3, n)
    return frame, picture, copy, log_sales


def _fit(frame, picture, copy, log_sales) -> np.ndarray:
    ridge = TimeHonestRidge(["T恤", "外套", "衬衫"], components=8).fit(frame, picture, copy, log_sales)
    return ridge.predict(frame, picture, copy)


def test_blocks_give_the_bits_of_one_pass_below_their_size_and_the_same_numbers_past_it(monkeypatch) -> None:
    data = _history()
    whole = _fit(*data)
    monkeypatch.setattr(projection, "BLOCK_ROWS", 10_000)  # larger than the history: one block
    np.testing.assert_array_equal(_fit(*data), whole)
    monkeypatch.setattr(projection, "BLOCK_ROWS", 97)  # many blocks
    np.testing.assert_allclose(_fit(*data), whole, rtol=0, atol=1e-9)


def test_pca_on_a_spread_sample_of_a_long_history(monkeypatch) -> None:
    frame, picture, copy, log_sales = _history(n=4000)
    whole = _fit(frame, picture, copy, log_sales)
    seen = []
    fit = projection.Reducer.fit
    monkeypatch.setattr(projection.Reducer, "fit", classmethod(lambda cls, v, n: seen.append(len(v)) or fit(v, n)))
    monkeypatch.setattr(projection, "PCA_MAX_ROWS", 1000)
    sampled = _fit(frame, picture, copy, log_sales)
    assert seen == [1000, 1000]  # picture and copy axes, each from 1,000 rows of 4,000
    assert np.corrcoef(sampled, whole)[0, 1] > 0.99  # the same read-out, to sampling noise
    np.testing.assert_allclose(sampled.mean(), whole.mean(), atol=0.01)


@pytest.mark.parametrize("rows", [0, 1])
def test_too_few_vectors_for_axes_stay_without_a_reducer(rows) -> None:
    vectors = np.full((5, 4), np.nan, dtype=np.float32)
    vectors[:rows] = 1.0
    assert projection._fit_reducer(vectors, 3) is None

"""Speed-ups of the feature path that must not change a single number (issue 17): the analog
search skips the similarity products with past SKUs no query row of a block may use, and the
category vote of every row is one array computation instead of one pandas group-by per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import analogs
from features.analogs import AnalogIndex, Neighbours
from features.assemble import vote_totals
from features.novelty import category_votes


def _index(n: int, rng: np.random.Generator, *, shuffled: bool) -> tuple[AnalogIndex, np.ndarray, np.ndarray, pd.Series]:
    days = pd.Series(pd.date_range("2024-01-01", periods=n, freq="D"))
    order = rng.permutation(n) if shuffled else np.arange(n)
    picture = rng.normal(size=(n, 24)).astype(np.float32)
    picture[rng.random(n) < 0.2] = np.nan  # some SKUs without a picture
    copy = rng.normal(size=(n, 16)).astype(np.float32)
    copy[5] = copy[3]  # exact ties in copy similarity
    dates = days.iloc[order].reset_index(drop=True)
    index = AnalogIndex(np.array([f"S{i}" for i in range(n)]), dates, rng.poisson(20, n), picture, copy, gap_days=7)
    return index, picture, copy, dates


@pytest.mark.parametrize("shuffled", [False, True])
def test_skipping_unusable_past_skus_gives_the_same_neighbours(shuffled: bool, monkeypatch) -> None:
    rng = np.random.default_rng(3)
    index, picture, copy, dates = _index(300, rng, shuffled=shuffled)
    fast = index.search_kinds(picture, copy, dates, 10, analogs.ANALOG_KINDS, chunk=64)
    assert analogs._usable(np.zeros((2, 5), dtype=bool)) == slice(0, 0)
    monkeypatch.setattr(analogs, "_usable", lambda allowed: slice(None))  # every past SKU, as before
    full = index.search_kinds(picture, copy, dates, 10, analogs.ANALOG_KINDS, chunk=64)
    for kind in analogs.ANALOG_KINDS:
        np.testing.assert_array_equal(fast[kind].index, full[kind].index)
        np.testing.assert_array_equal(fast[kind].similarity, full[kind].similarity)
    assert (fast["joint"].index[:, 0] >= 0).mean() > 0.9  # most rows found analogs: not a vacuous check


def test_vote_totals_are_the_group_by_sums_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    n, k, history = 400, 20, 60
    categories = np.array(["cup", "shoes", "tshirt", "bag"])[rng.integers(0, 4, history)]
    rows = rng.integers(0, history, (n, k))
    rows[rng.random((n, k)) < 0.15] = -1
    rows[7] = -1  # a row without neighbours
    sims = np.where(rows >= 0, rng.uniform(-0.2, 1, (n, k)), np.nan).astype(np.float32)
    sims[11] = np.float32(0.5)  # exact ties
    labels, codes = np.unique(categories, return_inverse=True)
    totals = vote_totals(codes, len(labels), Neighbours(rows, sims))
    for i in range(n):
        votes = category_votes(categories, rows[i], sims[i])
        if votes is None:
            assert i == 7 and not totals[i].any()
            continue
        expected = votes.reindex(labels, fill_value=0).to_numpy()
        assert totals.dtype == expected.dtype
        np.testing.assert_array_equal(totals[i], expected)
        assert labels[np.argmax(totals[i])] == votes.idxmax()

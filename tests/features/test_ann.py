"""The approximate analog search: past ``exact_max_rows`` usable SKUs, faiss graphs propose and the
index re-scores exactly. It may miss an analog (recall measured here against exact search), never
return one launched too late, excluded, or with a similarity other than the exact one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.analogs import ANALOG_KINDS, AnalogIndex, Override, day_numbers
from features.ann import checkpoint_sizes

DAY0 = pd.Timestamp("2022-01-01")


def clustered(rng, n: int, dim: int, clusters: int = 40) -> np.ndarray:
    """Unit vectors around a few centres: catalogues have families of alike SKUs, as here."""
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(3)
    n = 3000
    picture, copy = clustered(rng, n, 48), clustered(rng, n, 24)
    picture[rng.random(n) < 0.15] = np.nan  # SKUs without a picture
    days = rng.permutation(rng.integers(0, 900, n))  # not in launch order: the index sorts
    dates = pd.Series(DAY0 + pd.to_timedelta(days, unit="D"))
    sales = rng.gamma(2.0, 20.0, n)
    ids = np.array([f"S{i}" for i in range(n)])
    exact = AnalogIndex(ids, dates, sales, picture, copy, picture_weight=0.4)
    approximate = AnalogIndex(ids, dates, sales, picture, copy, picture_weight=0.4, exact_max_rows=300)
    queries = rng.choice(n, 250, replace=False)
    return {"exact": exact, "approximate": approximate, "picture": picture, "copy": copy, "dates": dates,
            "days": days, "ids": ids, "queries": queries}


def _search(index: AnalogIndex, h: dict, **kwargs) -> dict:
    q = h["queries"]
    return index.search_kinds(h["picture"][q], h["copy"][q], h["dates"].iloc[q], 20, ANALOG_KINDS,
                              exclude_ids=h["ids"][q], **kwargs)


def test_checkpoints_halve_down_to_the_exact_size():
    assert checkpoint_sizes(1000, 100) == [1000, 500, 250, 125]
    assert checkpoint_sizes(100, 100) == []


@pytest.mark.parametrize("kind", ANALOG_KINDS)
def test_recall_at_20_against_exact_search(history, kind):
    exact, approximate = _search(history["exact"], history), _search(history["approximate"], history)
    assert history["approximate"]._approximate(day_numbers(history["dates"].iloc[history["queries"]])).any()
    recalls = []
    for a, e in zip(approximate[kind].index, exact[kind].index):
        e = e[e >= 0]
        if len(e):
            recalls.append(len(set(a[a >= 0]) & set(e)) / len(e))
    assert np.mean(recalls) >= 0.95


def test_never_a_later_excluded_or_rescored_differently_analog(history):
    found = _search(history["approximate"], history)
    exact = history["exact"]
    q = history["queries"]
    for kind in ANALOG_KINDS:
        index, similarity = found[kind].index, found[kind].similarity
        for row, query in enumerate(q):
            ok = index[row] >= 0
            rows = index[row][ok]
            assert (history["days"][rows] <= history["days"][query] - exact.gap_days).all()
            assert query not in rows  # the SKU itself is excluded
            true = exact.similarity(history["picture"][[query]], history["copy"][[query]], kind)[0, rows]
            np.testing.assert_allclose(similarity[row][ok], true.astype(np.float32), rtol=0, atol=1e-6)
            assert (np.diff(similarity[row][ok]) <= 0).all()  # best first


def test_queries_with_few_usable_skus_stay_exact_bit_for_bit(history):
    exact, approximate = _search(history["exact"], history), _search(history["approximate"], history)
    prefix = history["approximate"]._prefix(day_numbers(history["dates"].iloc[history["queries"]]))
    small = prefix <= 300
    assert small.any() and (~small).any()
    for kind in ANALOG_KINDS:
        np.testing.assert_array_equal(approximate[kind].index[small], exact[kind].index[small])
        np.testing.assert_array_equal(approximate[kind].similarity[small], exact[kind].similarity[small])


def test_overrides_hold_on_the_approximate_path(history):
    q = history["queries"][:40]
    late = history["days"][q]
    h = dict(history, queries=q)
    exact = _search(history["exact"], h)
    overrides = []
    for row, query in enumerate(q):
        earlier = np.flatnonzero(history["days"] <= late[row] - 30)
        # pin the least similar usable SKU (never proposed by a graph) and exclude the best analog
        if len(earlier) < 400:
            overrides.append(None)
            continue
        worst = earlier[np.argmin(history["exact"].similarity(history["picture"][[query]], history["copy"][[query]],
                                                             "copy")[0, earlier])]
        best = exact["joint"].index[row, 0]
        overrides.append(Override(exclude=(history["ids"][best],), pin=(history["ids"][worst],)))
    found = _search(history["approximate"], h, overrides=overrides)["joint"]
    checked = 0
    for row, override in enumerate(overrides):
        if override is None:
            continue
        ids = set(history["ids"][found.index[row][found.index[row] >= 0]])
        assert override.pin[0] in ids and override.exclude[0] not in ids
        checked += 1
    assert checked >= 20


def test_the_setting_travels_with_the_saved_index(history):
    arrays = history["approximate"].to_arrays()
    again = AnalogIndex.from_arrays(arrays)
    assert again.exact_max_rows == 300
    assert AnalogIndex.from_arrays(history["exact"].to_arrays()).exact_max_rows is None
    a, b = _search(again, history), _search(history["approximate"], history)
    np.testing.assert_array_equal(a["joint"].index, b["joint"].index)

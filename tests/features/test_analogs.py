"""The similar-SKU index and the one feature path built on it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.analogs import AnalogIndex, analog_curve, analog_features, day_numbers
from features.assemble import FeaturePipeline, curve_shares
from features.cache import EmbeddingCache
from features.catalogue import CatalogueSpec, validate_frame
from features.embed import Embeddings, embed_frame

DAY0 = pd.Timestamp("2024-01-01")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dates(days) -> pd.Series:
    return pd.Series(DAY0 + pd.to_timedelta(np.asarray(days), unit="D"))


def random_history(rng, n: int, dim: int = 12, no_picture: float = 0.2):
    picture = unit(rng.normal(size=(n, dim)))
    picture[rng.random(n) < no_picture] = np.nan
    copy = unit(rng.normal(size=(n, dim)))
    days = rng.integers(0, 120, size=n)
    sales = rng.gamma(2.0, 20.0, size=n)
    return picture, copy, days, sales


def reference_similarity(qp, qc, hp, hc, kind: str, w: float) -> float:
    """One pair, written out plainly in float64."""
    q_has, h_has = not np.isnan(qp).any(), not np.isnan(hp).any()
    copy = float(np.dot(qc.astype(np.float64), hc.astype(np.float64)))
    if kind == "copy":
        return copy
    if not (q_has and h_has):
        return np.nan if kind == "picture" else copy
    picture = float(np.dot(qp.astype(np.float64), hp.astype(np.float64)))
    return picture if kind == "picture" else w * picture + (1 - w) * copy


def brute_force(index_args, queries, kind: str, k: int, gap: int, w: float):
    hp, hc, hdays = index_args
    qp, qc, qdays = queries
    k = min(k, len(hdays))
    out = []
    for i in range(len(qdays)):
        scored = []
        for j in range(len(hdays)):
            if hdays[j] > qdays[i] - gap:
                continue
            s = reference_similarity(qp[i], qc[i], hp[j], hc[j], kind, w)
            if not np.isnan(s):
                scored.append((s, j))
        scored.sort(key=lambda t: -t[0])
        out.append(scored[:k])
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["joint", "picture", "copy"])
def test_search_matches_brute_force_and_respects_launch_gap(seed, kind):
    rng = np.random.default_rng(seed)
    n_hist, n_query = int(rng.integers(5, 150)), int(rng.integers(1, 40))
    gap = int(rng.choice([1, 7, 14, 30]))
    w = float(rng.uniform(0, 1))
    k = int(rng.integers(1, 12))
    hp, hc, hdays, sales = random_history(rng, n_hist)
    qp, qc, qdays, _ = random_history(rng, n_query, no_picture=0.3)
    qdays = qdays + int(rng.integers(-20, 40))
    index = AnalogIndex(
        np.array([f"S{i}" for i in range(n_hist)]),
        dates(hdays),
        sales,
        hp,
        hc,
        picture_weight=w,
        gap_days=gap,
    )
    nb = index.search(qp, qc, dates(qdays), k, kind=kind, chunk=int(rng.integers(1, 16)))
    expected = brute_force((hp, hc, hdays), (qp, qc, qdays), kind, k, gap, w)

    assert nb.index.shape == nb.similarity.shape == (n_query, min(k, n_hist))
    for i, ref in enumerate(expected):
        got = nb.index[i]
        found = got[got >= 0]
        # never a SKU launched less than gap days before the query
        assert (hdays[found] <= qdays[i] - gap).all()
        # -1 only after the real neighbours, and exactly as many as exist
        assert len(found) == len(ref) and (got[len(found) :] == -1).all()
        assert np.isnan(nb.similarity[i, len(found) :]).all()
        # the truly most similar allowed ones, best first
        np.testing.assert_allclose(nb.similarity[i, : len(found)], [s for s, _ in ref], atol=1e-5)
        for j, s in zip(found, nb.similarity[i]):
            assert abs(reference_similarity(qp[i], qc[i], hp[j], hc[j], kind, w) - s) < 1e-5
        assert len(set(found)) == len(found)
        # ties aside, the very same SKUs
        gaps = np.diff([s for s, _ in ref])
        if len(ref) and (len(gaps) == 0 or np.abs(gaps).min() > 1e-4):
            assert list(found) == [j for _, j in ref]


def test_search_does_not_depend_on_chunking():
    rng = np.random.default_rng(42)
    hp, hc, hdays, sales = random_history(rng, 80)
    qp, qc, qdays, _ = random_history(rng, 33)
    index = AnalogIndex(np.arange(80), dates(hdays), sales, hp, hc)
    a = index.search(qp, qc, dates(qdays + 30), 6)
    b = index.search(qp, qc, dates(qdays + 30), 6, chunk=5)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.similarity, b.similarity)  # bit for bit: no batch effects


def test_one_search_for_every_kind_gives_each_kind_bit_for_bit():
    """search_kinds computes the picture and copy products once for all kinds (not once per kind)."""
    rng = np.random.default_rng(7)
    hp, hc, hdays, sales = random_history(rng, 90)
    qp, qc, qdays, _ = random_history(rng, 41)
    index = AnalogIndex(np.arange(90), dates(hdays), sales, hp, hc, picture_weight=0.3)
    exclude = np.arange(41) % 90
    together = index.search_kinds(qp, qc, dates(qdays + 30), 7, ("joint", "picture", "copy"),
                                  exclude_ids=exclude, chunk=16)
    for kind, nb in together.items():
        alone = index.search(qp, qc, dates(qdays + 30), 7, kind=kind, exclude_ids=exclude)
        np.testing.assert_array_equal(nb.index, alone.index)
        np.testing.assert_array_equal(nb.similarity, alone.similarity)
    assert not np.array_equal(together["picture"].index, together["copy"].index)


def test_launch_gap_boundary_is_inclusive():
    v = unit(np.ones((4, 3)))
    index = AnalogIndex(np.array(list("abcd")), dates([0, 3, 4, 10]), np.ones(4), v, v, gap_days=7)
    nb = index.search(v[:1], v[:1], dates([10]), 4)
    assert sorted(nb.index[0][nb.index[0] >= 0]) == [0, 1]  # day 3 = 10 - 7 allowed, day 4 not


def test_query_with_no_allowed_history():
    rng = np.random.default_rng(1)
    hp, hc, _, sales = random_history(rng, 10)
    index = AnalogIndex(np.arange(10), dates(np.full(10, 50)), sales, hp, hc, gap_days=7)
    qp, qc, _, _ = random_history(rng, 3)
    nb = index.search(qp, qc, dates([0, 50, 56]), 4)  # all before or within the gap
    assert (nb.index == -1).all() and np.isnan(nb.similarity).all()
    features = analog_features(index, qp, qc, dates([0, 50, 56]), k=4, floor=0.5)
    assert len(features) == 3
    assert (features["joint_n_analogs"] == 0).all() and (features["joint_n_close"] == 0).all()
    value_columns = [c for c in features.columns if c not in ("joint_n_analogs", "joint_n_close")]
    assert features[value_columns].isna().all().all()
    # k larger than the history is cut to the history's size
    late = index.search(qp, qc, dates([100, 100, 100]), 50)
    assert late.index.shape == (3, 10) and (late.index >= 0).all()


def test_exclude_ids():
    v = unit(np.eye(3) + 0.1)
    index = AnalogIndex(np.array(["a", "b", "c"]), dates([0, 0, 0]), np.ones(3), v, v)
    nb = index.search(v, v, dates([30, 30, 30]), 3, exclude_ids=np.array(["a", "b", "c"]))
    for i in range(3):
        assert i not in nb.index[i] and (nb.index[i][:2] >= 0).all() and nb.index[i][2] == -1


def test_picture_less_rows_fall_back_to_copy_similarity():
    picture = unit(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    picture[1] = np.nan  # past SKU 1 has no picture
    copy = unit(np.array([[1.0, 0.2], [0.3, 1.0], [1.0, -0.5]]))
    index = AnalogIndex(
        np.arange(3), dates([0, 0, 0]), np.ones(3), picture, copy, picture_weight=0.7
    )
    q_copy = unit(np.array([[0.5, 1.0], [0.5, 1.0]]))
    q_picture = np.array([[0.0, 1.0], [np.nan, np.nan]], dtype=np.float32)
    joint = index.similarity(q_picture, q_copy, "joint")
    copy_only = index.similarity(q_picture, q_copy, "copy")
    # query with a picture: blended where the past SKU has one, copy alone where it does not
    np.testing.assert_allclose(joint[0, 1], copy_only[0, 1], rtol=1e-6)
    np.testing.assert_allclose(
        joint[0, 0], 0.7 * (q_picture[0] @ picture[0]) + 0.3 * copy_only[0, 0], rtol=1e-6
    )
    # query without a picture: copy similarity everywhere
    np.testing.assert_allclose(joint[1], copy_only[1], rtol=1e-6)
    # picture similarity is undefined without both pictures, and such SKUs are never picture analogs
    assert np.isnan(index.similarity(q_picture, q_copy, "picture")[1]).all()
    nb = index.search(q_picture, q_copy, dates([30, 30]), 3, kind="picture")
    assert set(nb.index[0]) == {0, 2, -1} and (nb.index[1] == -1).all()
    nb = index.search(q_picture, q_copy, dates([30, 30]), 3, kind="joint")
    assert (nb.index >= 0).all()  # picture-less rows still get analogs through their copy


def test_analog_features_hand_made_example():
    # past SKUs: A and B are allowed for a query on day 10 (gap 7); C launched too late
    picture = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    copy = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    sales = np.array([9.0, 99.0, 999.0])
    index = AnalogIndex(
        np.array(["A", "B", "C"]),
        dates([0, 2, 20]),
        sales,
        picture,
        copy,
        list_price=np.array([10.0, 20.0, 40.0]),
        picture_weight=0.5,
        gap_days=7,
    )
    q_picture = np.array([[1.0, 0.0]], dtype=np.float32)
    q_copy = np.array([[1.0, 0.0]], dtype=np.float32)
    t = 0.5
    f = analog_features(
        index,
        q_picture,
        q_copy,
        dates([10]),
        k=5,
        floor=0.8,
        log_list_price=np.log([12.0]),
        temperature=t,
    ).iloc[0]

    def wmean(values, sims):
        weights = np.exp(np.asarray(sims) / t)
        return float((weights * np.asarray(values)).sum() / weights.sum())

    logs = np.log([10.0, 100.0])  # log1p(9), log1p(99)
    joint = [1.0, 0.5 * 0.0 + 0.5 * 0.6]
    assert f["joint_top1_similarity"] == pytest.approx(1.0)
    assert f["joint_wmean_log_sales"] == pytest.approx(wmean(logs, joint))
    assert f["joint_median_log_sales"] == pytest.approx(logs.mean())
    assert f["joint_top1_log_sales"] == pytest.approx(np.log(10.0))
    assert f["joint_n_close"] == 1.0 and f["joint_n_analogs"] == 2.0
    assert f["joint_log_price_gap"] == pytest.approx(
        np.log(12.0) - wmean(np.log([10.0, 20.0]), joint), abs=1e-6
    )
    assert f["picture_top1_similarity"] == pytest.approx(1.0)
    assert f["picture_wmean_log_sales"] == pytest.approx(wmean(logs, [1.0, 0.0]))
    assert f["copy_top1_similarity"] == pytest.approx(1.0)
    assert f["copy_wmean_log_sales"] == pytest.approx(wmean(logs, [1.0, 0.6]))
    # the closest analog counts most: the weighted mean sits nearer A's sales than the plain mean
    assert f["joint_wmean_log_sales"] < logs.mean()


def test_analog_curve_is_a_share_curve():
    shares = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    v = unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    index = AnalogIndex(np.arange(2), dates([0, 0]), np.ones(2), v, v, curve_shares=shares)
    q = unit(np.array([[1.0, 0.01], [0.01, 1.0], [1.0, 1.0]]))
    nb = index.search(q, q, dates([30, 30, -30]), 2)
    curve = analog_curve(index, nb, temperature=0.05)
    np.testing.assert_allclose(curve.sum(axis=1), 1.0)
    np.testing.assert_allclose(curve[0], shares[0], atol=1e-6)  # dominated by the close analog
    np.testing.assert_allclose(curve[1], shares[1], atol=1e-6)
    np.testing.assert_allclose(curve[2], shares.mean(axis=0))  # no analogs: the mean curve
    assert analog_curve(AnalogIndex(np.arange(2), dates([0, 0]), np.ones(2), v, v), nb) is None


def test_curve_shares():
    frame = pd.DataFrame({"d1": [2.0, 0.0], "d2": [6.0, 0.0]})
    np.testing.assert_allclose(curve_shares(frame, ["d1", "d2"]), [[0.25, 0.75], [0.5, 0.5]])
    assert curve_shares(frame, []) is None


def test_day_numbers():
    assert day_numbers(pd.Series(pd.to_datetime(["1970-01-02", "2024-01-01"]))).tolist() == [
        1,
        19723,
    ]


# ---------------------------------------------------------------- FeaturePipeline (real encoders)
@pytest.fixture(scope="module")
def fitted(history):
    catalogue, embeddings, settings, path = history
    pipeline = FeaturePipeline.fit(catalogue, embeddings, settings)
    return pipeline, catalogue, embeddings, settings, path


def take(embeddings: Embeddings, rows) -> Embeddings:
    return Embeddings(
        embeddings.picture[rows],
        embeddings.copy[rows],
        embeddings.picture_encoder,
        embeddings.copy_encoder,
    )


def test_pipeline_feature_columns_stable(fitted):
    pipeline, catalogue, embeddings, settings, _ = fitted
    frame = catalogue.frame
    features = pipeline.transform(frame, embeddings)
    expected = (
        [
            "log_cost_price",
            "log_list_price",
            "margin",
            "season_sin",
            "season_cos",
            "list_price_assumed",
            "category_assumed",
            "category",
            "channel",
        ]
        + [f"picture_pc{i}" for i in range(4)]
        + [f"copy_pc{i}" for i in range(4)]
        + [
            "joint_wmean_log_sales",
            "joint_top1_similarity",
            "joint_median_log_sales",
            "joint_top1_log_sales",
            "joint_log_wmean_sales",
            "joint_n_close",
            "joint_n_analogs",
            "joint_log_price_gap",
            "picture_wmean_log_sales",
            "picture_top1_similarity",
            "copy_wmean_log_sales",
            "copy_top1_similarity",
            "embedding_log_sales",
        ]
    )
    assert pipeline.feature_names == expected
    assert list(features.columns) == expected
    assert len(features) == len(frame)
    assert isinstance(features["category"].dtype, pd.CategoricalDtype)
    assert list(features["category"].cat.categories) == sorted(frame["category"].unique())
    # the same columns for any subset, in any order, of any size
    rows = [17, 3, 9]
    subset = pipeline.transform(frame.iloc[rows], take(embeddings, rows))
    assert list(subset.columns) == expected
    pd.testing.assert_frame_equal(
        subset, features.iloc[rows].reset_index(drop=True), check_exact=True
    )
    # analogs only among SKUs launched at least gap days before (history launches every 3 days, gap 7)
    n_earlier = np.maximum(0, np.arange(len(frame)) - 2)
    np.testing.assert_array_equal(
        features["joint_n_analogs"], np.minimum(settings.analog_k, n_earlier)
    )
    assert features.loc[:2, "joint_wmean_log_sales"].isna().all()
    assert features.loc[3:, "joint_wmean_log_sales"].notna().all()


def test_pipeline_unknown_category_and_missing_picture(fitted):
    pipeline, catalogue, embeddings, _, _ = fitted
    frame = catalogue.frame.iloc[[20, 21]].copy()
    frame["category"] = ["never seen", "cup"]
    e = take(embeddings, [20, 21])
    e.picture[0] = np.nan
    features = pipeline.transform(frame, e)
    assert pd.isna(features.loc[0, "category"]) and features.loc[1, "category"] == "cup"
    assert features.loc[0, [f"picture_pc{i}" for i in range(4)]].isna().all()
    assert features.loc[0, "joint_n_analogs"] == pipeline.k  # still has analogs, through its copy


def test_pipeline_refuses_other_encoders(fitted):
    pipeline, catalogue, embeddings, _, _ = fitted
    other = Embeddings(embeddings.picture, embeddings.copy, "hf:other@1", embeddings.copy_encoder)
    with pytest.raises(ValueError, match="do not match"):
        pipeline.transform(catalogue.frame, other)


def test_pipeline_survives_pickling(fitted):
    pipeline, catalogue, embeddings, _, _ = fitted
    restored = pickle.loads(pickle.dumps(pipeline))
    pd.testing.assert_frame_equal(
        restored.transform(catalogue.frame, embeddings),
        pipeline.transform(catalogue.frame, embeddings),
        check_exact=True,
    )


def test_similar_lists_only_earlier_skus(fitted):
    pipeline, catalogue, embeddings, _, _ = fitted
    shown = pipeline.similar(catalogue.frame.iloc[[10]], take(embeddings, [10]), 3)[0]
    assert len(shown) == 3
    launch = catalogue.frame.loc[10, "launch_date"]
    for analog in shown:
        assert pd.Timestamp(analog["launch_date"]) <= launch - pd.Timedelta(days=7)
    assert [a["similarity"] for a in shown] == sorted(
        (a["similarity"] for a in shown), reverse=True
    )
    curve = pipeline.curve(catalogue.frame.iloc[[10]], take(embeddings, [10]))
    assert curve.shape == (1, 7) and curve.sum() == pytest.approx(1.0)


def serving_frame(row: pd.Series, path: Path) -> pd.DataFrame:
    """One SKU as an upload form would send it: fields as text, picture as bytes (no file path)."""
    raw = pd.DataFrame(
        [
            {
                "sku_id": "upload-1",
                "launch_date": row["launch_date"].date().isoformat(),
                "category": row["category"],
                "title": row["title"],
                "description": row["description"],
                "image": "",
                "cost_price": str(row["cost_price"]),
                "list_price": str(row["list_price"]),
                "channel": row["channel"],
            }
        ]
    )
    frame, problems = validate_frame(
        raw, path.parent, require_target=False, spec=CatalogueSpec(require_image=False)
    )
    assert problems == []
    return frame.drop(columns="row_error")


@pytest.mark.parametrize("row", [0, 11, 23])
def test_one_feature_path_serving_equals_training(fitted, row):
    """A history SKU sent through the serving route gives exactly its training feature row."""
    pipeline, catalogue, embeddings, settings, path = fitted
    training = pipeline.transform(catalogue.frame, embeddings).iloc[[row]].reset_index(drop=True)
    source = catalogue.frame.iloc[row]
    frame = serving_frame(source, path)
    picture = Path(source["image_path"]).read_bytes()
    served = embed_frame(
        frame, settings, images=[picture], cache=EmbeddingCache(settings.cache_path)
    )
    assert served.computed == 0  # the serving process shares the cache: identical vectors
    pd.testing.assert_frame_equal(pipeline.transform(frame, served), training, check_exact=True)


def test_one_feature_path_without_cache(fitted):
    """Recomputed from scratch (batch of one, no cache) the features agree to float noise."""
    pipeline, catalogue, embeddings, settings, path = fitted
    row = 14
    training = pipeline.transform(catalogue.frame, embeddings).iloc[[row]].reset_index(drop=True)
    source = catalogue.frame.iloc[row]
    frame = serving_frame(source, path)
    served = embed_frame(frame, settings, images=[Path(source["image_path"]).read_bytes()])
    assert served.computed == 2
    np.testing.assert_allclose(served.picture[0], embeddings.picture[row], atol=1e-4)
    np.testing.assert_allclose(served.copy[0], embeddings.copy[row], atol=1e-5)
    pd.testing.assert_frame_equal(
        pipeline.transform(frame, served), training, check_exact=False, atol=1e-3
    )


def test_a_person_can_exclude_and_pin_analogs_per_query():
    from features.analogs import Override

    rng = np.random.default_rng(5)
    hp, hc, hdays, sales = random_history(rng, 40, no_picture=0.0)
    hdays[:] = 0
    hdays[39] = 200  # launched after the query: a pin of it cannot be used
    index = AnalogIndex(np.array([f"s{i}" for i in range(40)]), dates(hdays), sales, hp, hc)
    qp, qc = unit(rng.normal(size=(2, hp.shape[1]))), unit(rng.normal(size=(2, hp.shape[1])))
    when = dates([100, 100])
    plain = index.search(qp, qc, when, 5)
    top = f"s{plain.index[0, 0]}"
    far = f"s{int(np.argmin(index.similarity(qp[:1], qc[:1])[0, :39]))}"
    overrides = [Override(exclude=(top,), pin=(far, "s39")), None]
    changed = index.search(qp, qc, when, 5, overrides=overrides)
    ids = [f"s{i}" for i in changed.index[0]]
    assert top not in ids and far in ids and "s39" not in ids
    assert changed.similarity[0, ids.index(far)] == pytest.approx(np.nanmax(changed.similarity[0]))
    np.testing.assert_array_equal(changed.index[1], plain.index[1])  # the other query is untouched

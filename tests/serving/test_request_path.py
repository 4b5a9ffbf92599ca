"""One decode per picture: the service's validation keeps the decoded upload for the encoder
(features.images.CheckedPicture), within a memory cap, and the vectors are the same bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import images
from features.config import Settings
from features.embed import embed_frame
from features.images import CheckedPicture, decode_image


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts every real decode, wherever it is called from."""
    calls: list[int] = []
    original = images.decode_image

    def counting(data, **limits):
        calls.append(len(data))
        return original(data, **limits)

    monkeypatch.setattr(images, "decode_image", counting)
    from serving import predictor

    monkeypatch.setattr(predictor, "decode_image", counting)
    return calls


def fresh_picture(kit, seed: int) -> bytes:
    """A picture no cache holds, even a cache shared between runs (a few random pixels)."""
    rng = np.random.default_rng()
    image = kit.draw_picture(kit.shapes[seed % len(kit.shapes)], tuple(int(c) for c in rng.integers(0, 255, 3)),
                             size=(96 + seed, 120))
    for x, y in rng.integers(0, 90, (8, 2)):
        image.putpixel((int(x), int(y)), tuple(int(c) for c in rng.integers(0, 255, 3)))
    return kit.picture_bytes(image)


def test_a_checked_picture_embeds_to_the_same_bits_without_a_decode(kit, tmp_path, decodes) -> None:
    settings = Settings(home=tmp_path / "home")
    data = fresh_picture(kit, 1)
    frame = pd.DataFrame({"title": ["白色T恤 tee"], "description": [""]})
    plain = embed_frame(frame, settings, images=[data])
    assert len(decodes) == 1
    limits = {"max_bytes": settings.max_image_bytes, "max_pixels": settings.max_image_pixels}
    checked = CheckedPicture(data, images.decode_image(data, **limits))
    decodes.clear()
    kept = embed_frame(frame, settings, images=[checked])
    assert decodes == []  # the encoder used the image validation decoded
    np.testing.assert_array_equal(kept.picture, plain.picture)
    assert checked == data and bytes(checked) == data  # still the upload's bytes (hash, log, cache key)


def test_the_service_decodes_each_new_picture_once(trained, kit, decodes) -> None:
    from serving.champion import load_champion

    predictor, message = load_champion(trained["settings"])
    assert predictor is not None, message
    record = {"title": "白色纯棉T恤 white cotton tee", "cost_price": 45.0, "category": "T恤"}
    pictures = [fresh_picture(kit, seed) for seed in (2, 3)]
    answers = predictor.predict([record, record], pictures, to_log=False)
    assert all(a["ok"] for a in answers)
    assert sorted(decodes) == sorted(len(p) for p in pictures)  # one decode each, not two

    # Past the cap, a picture is decoded again at the encoder (its vector: the same bits, test above).
    decodes.clear()
    predictor.settings = predictor.settings.model_copy(update={"serve_decoded_pixels": 0})
    again = predictor.predict([record], [fresh_picture(kit, 4)], to_log=False)[0]
    assert len(decodes) == 2 and again["ok"]


def test_a_bad_picture_is_still_refused_by_name(trained) -> None:
    from serving.champion import load_champion

    predictor, _ = load_champion(trained["settings"])
    answer = predictor.predict([{"title": "tee", "cost_price": 45.0}], [b"not a picture"], to_log=False)[0]
    assert not answer["ok"] and answer["errors"][0]["field"] == "image"
    with pytest.raises(images.ImageError):
        decode_image(b"not a picture", max_bytes=10_000, max_pixels=10_000)


# ------------------------------------------------------------ one analog search per forecast
def candidate_requests(sample: Path) -> tuple[list[dict], list[bytes | None]]:
    """The sample's 40 candidates, and variants: no category, no list price, analogs excluded and
    pinned, no picture (each the way a merchandiser sends it)."""
    table = pd.read_csv(sample / "candidates.csv", dtype=str).fillna("")
    records = [{k: v for k, v in row.items() if k != "image" and v != ""} for row in table.to_dict("records")]
    pictures: list[bytes | None] = [(sample / p).read_bytes() for p in table["image"]]
    history = pd.read_parquet(sample / "catalogue.parquet")["sku_id"].astype(str).tolist()
    variants = [({**records[0], "category": None}, pictures[0]), ({**records[1], "list_price": None}, pictures[1]),
                ({**records[2], "exclude_analogs": history[-30:-25]}, pictures[2]),
                ({**records[3], "pin_analogs": history[:2]}, pictures[3]), ({**records[4]}, None)]
    for record, picture in variants:
        records.append({k: v for k, v in record.items() if v is not None})
        pictures.append(picture)
    return records, pictures


def searching_alone(monkeypatch) -> None:
    """The path as it was: every consumer of a forecast makes its own search."""
    from features.assemble import FeaturePipeline

    for name, drop in (("transform", "found"), ("curve", "nb"), ("similar", "nb"), ("novelty", "plain")):
        original = getattr(FeaturePipeline, name)

        def alone(self, *args, _original=original, _drop=drop, _n={"transform": 3, "curve": 2, "similar": 3,
                                                                      "novelty": 2}[name], **kwargs):
            kwargs.pop(_drop, None)
            kwargs.pop("completed", None)  # and each completes the rows again, as it did
            return _original(self, *args[:_n], **kwargs)
        monkeypatch.setattr(FeaturePipeline, name, alone)


@pytest.mark.parametrize("path", ["exact", "approximate"])
def test_one_search_gives_the_answers_of_one_search_per_part(trained, monkeypatch, path) -> None:
    """On the exact path, and past ``exact_max_rows`` where the faiss graphs propose candidates
    (forced here at a quarter of the history: every candidate may use more SKUs than that)."""
    from features.analogs import AnalogIndex
    from serving.champion import load_champion

    predictor, message = load_champion(trained["settings"])
    assert predictor is not None, message
    records, pictures = candidate_requests(trained["sample"])
    if path == "approximate":
        index = predictor.bundle.pipeline.index
        index.exact_max_rows, index._graphs = len(index) // 4, None
        assert index.prepare()._approximate(index.days.max(keepdims=True) + 10**4).all()
        records, pictures = records[:8] + records[40:], pictures[:8] + pictures[40:]
    searches: list[tuple] = []
    original = AnalogIndex.search_kinds
    monkeypatch.setattr(AnalogIndex, "search_kinds", lambda self, *a, **k: searches.append(a[4]) or original(self, *a, **k))
    shared = [predictor.predict([r], [p], to_log=False, image_required=False)[0] for r, p in zip(records, pictures)]
    # A forecast with a category and no pins: one search (all three kinds) for everything.
    plain = [i for i, r in enumerate(records) if r.get("category") and not r.get("pin_analogs") and not r.get("exclude_analogs")]
    # One per forecast, plus the category vote of the SKU without one (1) and novelty's own search
    # (k=1, and the picture vote) of the two whose analogs a person excluded or pinned (2 each); and
    # per forecast the stand-in check (features.novelty.stand_in_candidates); a forecast whose
    # picture or copy was stood in for reads its candidates through the path (1) and, no longer
    # plain, has novelty's own search and the picture vote (2).
    stood = sum(bool(a["novelty"]["stood_in"]) for a in shared)
    assert len(plain) == len(records) - 3 and len(searches) == 2 * len(records) + 5 + 3 * stood
    searching_alone(monkeypatch)
    searches.clear()
    alone = [predictor.predict([r], [p], to_log=False, image_required=False)[0] for r, p in zip(records, pictures)]
    assert len(searches) > 4 * len(records)  # the old path: 5+ searches per forecast
    for ours, theirs in zip(shared, alone):
        assert ours["ok"] and theirs["ok"], (ours, theirs)
        ours, theirs = dict(ours), dict(theirs)
        ours.pop("forecast_id", None), theirs.pop("forecast_id", None)
        assert ours == theirs

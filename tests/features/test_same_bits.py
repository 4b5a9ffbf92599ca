"""An embedding depends on its input only: not on the cache's state, the batch it was encoded in,
the thread count or the order of the rows. Every figure the product reports is built on these
vectors, so a last bit that moved with load would move the figures (a benchmark that is not
reproducible, a CI that fails on a busy machine)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from features.cache import EmbeddingCache
from features.catalogue import load_catalogue
from features.config import Settings
from features.embed import embed_frame
from features.sample import write_sample_catalogue

# Real-looking copy beside the sample's: Chinese, English, mixed, long and empty descriptions.
COPIES = [
    ("白色纯棉短袖T恤", "夏季新款 宽松百搭 oversize 男女同款"),
    ("Slim-fit stretch denim jeans", "High waist, five pockets, machine washable."),
    ("羊毛混纺大衣 wool blend coat", ""),
    ("1e5", "null"),
    ("帽子", "遮阳 " * 200),
]


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """40 sample SKUs (drawn pictures, templated copy) with five hand-written copies mixed in."""
    folder = tmp_path_factory.mktemp("same-bits")
    path = write_sample_catalogue(folder, n=40, seed=3, candidates=0)
    frame = load_catalogue(path).frame.reset_index(drop=True)
    for i, (title, description) in enumerate(COPIES):
        frame.loc[i * 7, ["title", "description"]] = [title, description]
    return frame


def _settings(home: Path, **change) -> Settings:
    return Settings(home=home, embed_engine="local", **change)


def _embed(frame, settings: Settings, cache: EmbeddingCache | None):
    e = embed_frame(frame, settings, cache=cache)
    return e.picture, e.copy


def test_same_bits_whatever_the_cache_batch_threads_and_order(frame, tmp_path):
    """Reference: empty cache, defaults. Then: a cache warmed by a random third of the rows encoded
    in batches of 3 on one thread; no cache with batches of 1 on two copy threads; the rows
    shuffled. Every vector has the same bits in every run."""
    picture, copy = _embed(frame, _settings(tmp_path / "a"), EmbeddingCache(tmp_path / "a.sqlite"))

    warm = EmbeddingCache(tmp_path / "b.sqlite")
    part = frame.iloc[sorted(random.Random(5).sample(range(len(frame)), len(frame) // 3))]
    _embed(part, _settings(tmp_path / "b", batch_size=3, threads=1), warm)
    for got in (_embed(frame, _settings(tmp_path / "b", batch_size=16, threads=2), warm),
                _embed(frame, _settings(tmp_path / "c", batch_size=1, threads=2, copy_threads=2), None)):
        np.testing.assert_array_equal(got[0], picture)
        np.testing.assert_array_equal(got[1], copy)

    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = _embed(frame.iloc[order], _settings(tmp_path / "d", batch_size=5), None)
    np.testing.assert_array_equal(shuffled[0], picture[order])
    np.testing.assert_array_equal(shuffled[1], copy[order])

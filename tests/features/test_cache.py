"""The embedding cache: nothing unchanged is embedded twice; concurrent and killed writers are safe."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import features.embed as embed_module
from features.cache import EmbeddingCache, content_key
from features.catalogue import load_catalogue
from features.config import Settings
from features.embed import embed_frame
from features.encoders import copy_text

REPO = Path(__file__).resolve().parents[2]


class CountingEncoder:
    """A cheap stand-in encoder: a vector derived from the content's hash; counts what it encodes."""

    def __init__(self, kind: str, dim: int = 8, id: str | None = None):
        self.kind = kind
        self.dim = dim
        self.id = id or f"counting-{kind}@1"
        self.encoded: list = []

    def encode(self, items):
        rows = []
        for item in items:
            if self.kind == "image":
                assert isinstance(item, Image.Image)  # the cache hands the encoder decoded pictures
                data = item.tobytes()
            else:
                data = item.encode("utf-8")
            seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim))
            self.encoded.append(item)
        x = np.asarray(rows, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def counting(monkeypatch):
    """Replace the encoders embed_frame uses by counting stand-ins (the cache is what is under test)."""
    encoders = {"image": CountingEncoder("image"), "text": CountingEncoder("text")}
    monkeypatch.setattr(embed_module, "get_encoder", lambda name, kind, threads=2, state=None: encoders[kind])
    return encoders


def test_embed_frame_fills_cache_then_computes_nothing(make_catalogue, settings, counting):
    catalogue = load_catalogue(make_catalogue(6))
    cache = EmbeddingCache(settings.cache_path)
    first = embed_frame(catalogue.frame, settings, cache=cache)
    assert first.computed == 12
    assert first.picture.shape == (6, 8) and first.copy.shape == (6, 8)
    assert first.picture_encoder == "counting-image@1" and first.copy_encoder == "counting-text@1"
    assert cache.count("counting-image@1") == 6 and cache.count("counting-text@1") == 6
    assert len(counting["image"].encoded) == 6 and len(counting["text"].encoded) == 6

    second = embed_frame(catalogue.frame, settings, cache=cache)
    assert second.computed == 0
    assert (
        len(counting["image"].encoded) == 6 and len(counting["text"].encoded) == 6
    )  # never called
    np.testing.assert_array_equal(second.picture, first.picture)
    np.testing.assert_array_equal(second.copy, first.copy)

    # a fresh process (new connection, same file) sees the same cache
    cache.close()
    reopened = EmbeddingCache(settings.cache_path)
    third = embed_frame(catalogue.frame, settings, cache=reopened)
    assert third.computed == 0
    np.testing.assert_array_equal(third.picture, first.picture)


def test_changing_one_title_reembeds_only_that_copy(make_catalogue, settings, counting):
    frame = load_catalogue(make_catalogue(5)).frame
    cache = EmbeddingCache(settings.cache_path)
    before = embed_frame(frame, settings, cache=cache)
    edited = frame.copy()
    edited.loc[2, "title"] = "全新标题 不锈钢保温杯"
    counting["text"].encoded.clear()
    counting["image"].encoded.clear()
    after = embed_frame(edited, settings, cache=cache)
    assert after.computed == 1
    assert counting["text"].encoded == [
        copy_text("全新标题 不锈钢保温杯", edited.loc[2, "description"])
    ]
    assert counting["image"].encoded == []
    np.testing.assert_array_equal(after.picture, before.picture)
    unchanged = [0, 1, 3, 4]
    np.testing.assert_array_equal(after.copy[unchanged], before.copy[unchanged])
    assert not np.allclose(after.copy[2], before.copy[2])


def test_identical_content_is_embedded_once(make_catalogue, settings, counting, kit):
    rows = kit.catalogue_rows(4)
    path = make_catalogue(rows=rows)
    for i in (1, 2):  # rows 2 and 3 reuse row 1's picture file and copy
        (path.parent / rows[i]["image"]).write_bytes((path.parent / rows[0]["image"]).read_bytes())
    frame = load_catalogue(path).frame
    frame.loc[[1, 2], "title"] = frame.loc[0, "title"]
    frame.loc[[1, 2], "description"] = frame.loc[0, "description"]
    result = embed_frame(frame, settings, cache=EmbeddingCache(settings.cache_path))
    assert result.computed == 4  # 2 distinct pictures + 2 distinct copies
    np.testing.assert_array_equal(result.picture[1], result.picture[0])
    np.testing.assert_array_equal(result.copy[2], result.copy[0])


def test_without_cache_everything_is_computed(make_catalogue, settings, counting):
    frame = load_catalogue(make_catalogue(3)).frame
    assert embed_frame(frame, settings).computed == 6
    assert embed_frame(frame, settings).computed == 6


def test_pictures_given_as_bytes_and_missing_pictures(make_catalogue, settings, counting):
    frame = load_catalogue(make_catalogue(3)).frame
    cache = EmbeddingCache(settings.cache_path)
    from_files = embed_frame(frame, settings, cache=cache)
    uploads = [
        Path(frame["image_path"][0]).read_bytes(),
        None,
        Path(frame["image_path"][2]).read_bytes(),
    ]
    from_bytes = embed_frame(frame, settings, images=uploads, cache=cache)
    assert from_bytes.computed == 0  # same bytes, same key
    np.testing.assert_array_equal(from_bytes.picture[[0, 2]], from_files.picture[[0, 2]])
    assert np.isnan(from_bytes.picture[1]).all()  # no picture: a NaN row, not a made-up vector
    assert not np.isnan(from_bytes.copy).any()


def test_wrong_dim_vector_is_treated_as_absent(make_catalogue, settings, counting):
    frame = load_catalogue(make_catalogue(2)).frame
    cache = EmbeddingCache(settings.cache_path)
    text = copy_text(frame.loc[0, "title"], frame.loc[0, "description"])
    key = content_key(text)
    cache.put_many("counting-text@1", {key: np.ones(5, dtype=np.float32)})  # wrong dim
    assert cache.get_many("counting-text@1", [key], 8) == {}
    # a damaged blob (length not a multiple of 4 bytes, dim column claiming the right size)
    cache._db.execute(
        "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
        ["counting-text@1", key, 8, b"\x00" * 7],
    )
    assert cache.get_many("counting-text@1", [key], 8) == {}
    result = embed_frame(frame, settings, cache=cache)
    assert result.computed == 4  # the bad entry was recomputed
    assert cache.get_many("counting-text@1", [key], 8)[key].shape == (8,)
    assert embed_frame(frame, settings, cache=cache).computed == 0


def test_cache_is_namespaced_by_encoder(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    v = np.arange(4, dtype=np.float32)
    cache.put_many("a@1", {"k": v})
    assert cache.get_many("a@2", ["k"], 4) == {}
    np.testing.assert_array_equal(cache.get_many("a@1", ["k", "k", "missing"], 4)["k"], v)
    many = {
        f"k{i}": np.full(4, i, dtype=np.float32) for i in range(1200)
    }  # over SQLite's parameter cap
    cache.put_many("a@1", many)
    got = cache.get_many("a@1", list(many), 4)
    assert len(got) == 1200 and got["k1199"][0] == 1199


# ---------------------------------------------------------------- several processes
WRITER = textwrap.dedent(
    """
    import sys, time, hashlib
    import numpy as np
    from features.cache import EmbeddingCache

    path, name, first, last, batch, dim, start_at = sys.argv[1:8]
    first, last, batch, dim = int(first), int(last), int(batch), int(dim)
    cache = EmbeddingCache(path)
    while time.time() < float(start_at):  # start both writers at the same moment
        time.sleep(0.001)

    def vector(key):
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=dim).astype(np.float32)

    keys = [f"key{i}" for i in range(first, last)]
    done = 0
    if last < 0:  # loop forever (until killed), one committed batch per line on stdout
        i = 0
        while True:
            cache.put_many("enc@1", {f"{name}-{i}-{j}": vector(f"{name}-{i}-{j}") for j in range(batch)})
            i += 1
            print(i, flush=True)
    for start in range(0, len(keys), batch):
        cache.put_many("enc@1", {k: vector(k) for k in keys[start : start + batch]})
        done += 1
    print(f"{name} wrote {done} batches", flush=True)
    """
)


def expected_vector(key: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


def start_writer(tmp_path: Path, *args) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_write_the_same_cache_at_once(tmp_path):
    path = tmp_path / "shared" / "embeddings.sqlite"  # neither process finds it existing
    dim = 64
    start_at = time.time() + 1.5
    # overlapping key ranges: keys 300-599 are written by both
    a = start_writer(tmp_path, path, "a", 0, 600, 25, dim, start_at)
    b = start_writer(tmp_path, path, "b", 300, 900, 25, dim, start_at)
    out_a, err_a = a.communicate(timeout=120)
    out_b, err_b = b.communicate(timeout=120)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    assert "a wrote 24 batches" in out_a and "b wrote 24 batches" in out_b

    cache = EmbeddingCache(path)
    assert cache.count() == 900
    keys = [f"key{i}" for i in range(900)]
    got = cache.get_many("enc@1", keys, dim)
    assert len(got) == 900
    for key in keys[::7]:
        np.testing.assert_array_equal(got[key], expected_vector(key, dim))
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_writer_killed_mid_write_leaves_a_sound_cache(tmp_path):
    path = tmp_path / "embeddings.sqlite"
    dim, batch = 1280, 300  # 1.5 MB per transaction
    writer = start_writer(tmp_path, path, "w", 0, -1, batch, dim, time.time())
    committed = 0
    try:
        while committed < 3:  # let a few batches land, then kill it mid-stream
            line = writer.stdout.readline()
            assert line, writer.stderr.read()
            committed = int(line)
        time.sleep(0.05)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    cache = EmbeddingCache(path)  # opens (recovers the WAL) without error
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    total = cache.count("enc@1")
    assert total >= committed * batch
    assert total % batch == 0  # whole batches or nothing
    rows = cache._db.execute("SELECT key, dim, length(vector) FROM embeddings").fetchall()
    assert all(d == dim and n == 4 * dim for _, d, n in rows)
    keys = [k for k, _, _ in rows]
    got = cache.get_many("enc@1", keys, dim)
    assert len(got) == total
    for key in keys[:: max(1, total // 20)]:
        np.testing.assert_array_equal(got[key], expected_vector(key, dim))
    # the file is not left locked: a new writer commits at once
    cache.put_many("enc@1", {"after": np.zeros(dim, dtype=np.float32)})
    assert cache.count("enc@1") == total + 1


def test_killed_writer_db_is_readable_by_plain_sqlite(tmp_path):
    """Belt and braces: the killed writer's file is a valid SQLite database for any reader."""
    path = tmp_path / "embeddings.sqlite"
    writer = start_writer(tmp_path, path, "w", 0, -1, 50, 256, time.time())
    try:
        assert writer.stdout.readline().strip() == "1"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] % 50 == 0


# ---------------------------------------------------------------- the real default encoders
def test_real_default_encoders_end_to_end(make_catalogue, tmp_path):
    settings = Settings(home=tmp_path / "home")
    assert (settings.image_encoder, settings.text_encoder) == ("efficientnet-lite0-onnx", "use-m3")
    frame = load_catalogue(make_catalogue(5)).frame
    cache = EmbeddingCache(settings.cache_path)
    first = embed_frame(frame, settings, cache=cache)
    assert first.computed == 10
    assert first.picture.shape == (5, 1280) and first.copy.shape == (5, 512)
    assert first.picture.dtype == np.float32 and first.copy.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.picture, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(first.copy, axis=1), 1, atol=1e-5)
    assert first.picture_encoder.startswith(
        "efficientnet-lite0-onnx@"
    ) and first.copy_encoder.startswith("use-m3@")
    assert cache.count(first.picture_encoder) == 5 and cache.count(first.copy_encoder) == 5

    second = embed_frame(frame, settings, cache=EmbeddingCache(settings.cache_path))
    assert second.computed == 0
    np.testing.assert_array_equal(second.picture, first.picture)
    np.testing.assert_array_equal(second.copy, first.copy)

    edited = frame.copy()
    edited.loc[4, "title"] = "不锈钢保温杯 新款"
    third = embed_frame(edited, settings, cache=cache)
    assert third.computed == 1
    np.testing.assert_array_equal(third.copy[:4], first.copy[:4])

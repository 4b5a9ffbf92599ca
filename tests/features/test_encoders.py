"""Encoders: the default offline pair (ONNX Runtime checked against PyTorch eager), the name registry, and the transformers encoder on tiny models."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from features.encoders import (
    EfficientNetLite0,
    EfficientNetLite0Onnx,
    HuggingFaceEncoder,
    UniversalSentenceEncoderM3,
    copy_text,
    get_encoder,
    square_rgb,
)


def assert_unit_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


# ---------------------------------------------------------------- defaults
@pytest.fixture(scope="module")
def picture_encoder():
    return get_encoder("efficientnet-lite0", "image", 2)


@pytest.fixture(scope="module")
def copy_encoder():
    return get_encoder("use-m3", "text", 2)


def test_efficientnet_unit_vectors_deterministic(picture_encoder, kit):
    assert isinstance(picture_encoder, EfficientNetLite0)
    assert picture_encoder.kind == "image" and picture_encoder.dim == 1280
    assert picture_encoder.id.startswith("efficientnet-lite0@")
    pictures = [
        kit.draw_picture("circle", "red"),
        kit.draw_picture("square", "blue", size=(160, 90)),  # not square: padded
        Image.new("L", (50, 70), 128),  # greyscale: converted
    ]
    first = picture_encoder.encode(pictures)
    assert_unit_rows(first, 3, 1280)
    again = picture_encoder.encode(pictures)
    np.testing.assert_array_equal(first, again)
    # a row does not depend on its batch-mates beyond float noise
    alone = picture_encoder.encode(pictures[1:2])
    np.testing.assert_allclose(alone[0], first[1], atol=1e-4)


def test_efficientnet_near_identical_closer_than_different(picture_encoder, kit):
    shirt = kit.draw_picture("circle", "red", size=(128, 128))
    nudged = kit.draw_picture("circle", "red", size=(128, 128), shift=2)
    mug = kit.draw_picture("stripes", "blue", size=(128, 128))
    a, b, c = picture_encoder.encode([shirt, nudged, mug])
    assert cosine(a, b) > 0.9
    assert cosine(a, b) > cosine(a, c) + 0.05


def test_square_rgb_pads_on_white():
    tall = Image.new("RGB", (24, 40), (0, 0, 0))
    array = square_rgb(tall, 8)
    assert array.shape == (8, 8, 3) and array.dtype == np.float32
    assert array[:, 0].min() > 0.9 and array[:, -1].min() > 0.9  # white sides
    assert array[:, 4].max() < 0.1  # the black item in the middle


def test_use_m3_acceptance(copy_encoder):
    """The issue's acceptance test: a cotton white tee is closer to a white cotton short-sleeve than to a steel mug."""
    assert isinstance(copy_encoder, UniversalSentenceEncoderM3)
    assert copy_encoder.kind == "text" and copy_encoder.dim == 512
    tee, short_sleeve, flask = copy_encoder.encode(["纯棉白色T恤", "白色棉质短袖", "不锈钢保温杯"])
    assert cosine(tee, short_sleeve) > cosine(tee, flask) + 0.2


def test_use_m3_unit_vectors_deterministic(copy_encoder):
    texts = ["纯棉白色T恤\n夏季短袖", "stainless steel flask", "", "x" * 3000]
    first = copy_encoder.encode(texts)
    assert_unit_rows(first, 4, 512)
    np.testing.assert_array_equal(first, copy_encoder.encode(texts))


def test_get_encoder_is_loaded_once(picture_encoder):
    assert get_encoder("efficientnet-lite0", "image", 2) is picture_encoder


# ---------------------------------------------------------------- ONNX Runtime (the default)
def _photo_like(seed: int, size: tuple[int, int] = (1600, 1200)) -> Image.Image:
    """A photograph-like JPEG: smooth lighting, a textured object with soft edges, sensor noise."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    light = 0.55 + 0.35 * np.cos(2.5 * xx + rng.uniform(0, 3)) * np.sin(1.7 * yy + rng.uniform(0, 3))
    base = np.stack([light * c for c in rng.uniform(0.4, 1.0, 3)], axis=-1)
    cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.6), rng.uniform(0.15, 0.3)
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
    texture = 0.5 + 0.5 * np.sin(60 * xx + 40 * yy)[..., None] * rng.uniform(0.2, 0.8, 3)
    base = np.where(inside[..., None], texture * rng.uniform(0.3, 1.0, 3), base)
    noisy = np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1)
    image = Image.fromarray((noisy * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def onnx_state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def onnx_encoder(onnx_state):
    return get_encoder("efficientnet-lite0-onnx", "image", 1, onnx_state)


@pytest.fixture(scope="module")
def check_pictures(tmp_path_factory) -> list[Image.Image]:
    """Pictures of the synthetic sample, two real photographs scikit-learn ships, and photo-like JPEGs."""
    from sklearn.datasets import load_sample_images

    from features.sample import write_sample_catalogue

    folder = write_sample_catalogue(tmp_path_factory.mktemp("sample"), n=40, candidates=0).parent
    sample = [Image.open(p) for p in sorted(folder.rglob("*.png"))[:40]]
    assert len(sample) == 40
    photos = [Image.fromarray(array) for array in load_sample_images().images]
    return sample + photos + [_photo_like(seed) for seed in range(6)]


def test_default_picture_encoder_is_onnx(onnx_encoder, picture_encoder):
    from features.config import Settings

    assert Settings().image_encoder == "efficientnet-lite0-onnx"
    assert isinstance(onnx_encoder, EfficientNetLite0Onnx) and onnx_encoder.dim == 1280
    # the same weights, another variant: another id, so a model is tied to the variant it was trained on
    digest = picture_encoder.id.split("@", 1)[1]
    assert onnx_encoder.id == f"efficientnet-lite0-onnx@{digest}:fp32" != picture_encoder.id


def test_onnx_export_once_under_state_keyed_by_weights(onnx_encoder, onnx_state, kit, monkeypatch):
    import onnx

    from features import encoders

    digest = onnx_encoder.id.split("@", 1)[1].split(":")[0]
    onnx_encoder.encode([kit.draw_picture("circle", "red")])
    exported = onnx_state / "encoders" / f"efficientnet-lite0-{digest}-opset{encoders.ONNX_OPSET}.onnx"
    assert onnx_encoder.path == exported and exported.is_file()
    onnx.checker.check_model(str(exported))
    assert not list(exported.parent.glob("*.tmp"))  # written atomically
    stamp = exported.stat().st_mtime_ns
    # a second process finds the export and never needs PyTorch
    monkeypatch.setattr(encoders, "_lite0_torch", lambda threads: pytest.fail("re-exported"))
    again = EfficientNetLite0Onnx(1, onnx_state)
    assert again.encode([kit.draw_picture("square", "blue")]).shape == (1, 1280)
    assert exported.stat().st_mtime_ns == stamp


def test_onnx_matches_pytorch_fp32(onnx_encoder, picture_encoder, check_pictures):
    """The issue's acceptance: cosine of every embedding to PyTorch fp32 >= 0.999."""
    ours = onnx_encoder.encode(check_pictures)
    reference = picture_encoder.encode(check_pictures)
    assert_unit_rows(ours, len(check_pictures), 1280)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    # and the pictures are not all alike: the check has something to tell apart
    assert (reference @ reference.T).min() < 0.9


def test_onnx_same_bytes_across_runs_threads_and_batches(onnx_encoder, onnx_state, check_pictures):
    first = onnx_encoder.encode(check_pictures[:33])
    np.testing.assert_array_equal(first, onnx_encoder.encode(check_pictures[:33]))
    two_threads = EfficientNetLite0Onnx(2, onnx_state)
    np.testing.assert_array_equal(first, two_threads.encode(check_pictures[:33]))
    one_by_one = np.concatenate([onnx_encoder.encode([p]) for p in check_pictures[:33]])
    np.testing.assert_array_equal(first, one_by_one)


def test_no_network_loaded_when_every_vector_is_cached(make_catalogue, tmp_path, monkeypatch):
    from features.cache import EmbeddingCache
    from features.catalogue import load_catalogue
    from features.config import Settings
    from features.embed import embed_frame

    settings = Settings(home=tmp_path / "home", threads=1)
    frame = load_catalogue(make_catalogue(4)).frame
    cache = EmbeddingCache(settings.cache_path)
    first = embed_frame(frame, settings, cache=cache)
    get_encoder.cache_clear()  # a new process: fresh encoder objects
    from features import encoders

    monkeypatch.setattr(encoders, "ort_session", lambda *a: pytest.fail("session loaded"))
    monkeypatch.setattr(encoders.UniversalSentenceEncoderM3, "model", property(lambda s: pytest.fail("USE loaded")))
    again = embed_frame(frame, settings, cache=cache)
    assert again.computed == 0
    np.testing.assert_array_equal(again.picture, first.picture)
    cache.close()
    get_encoder.cache_clear()


def test_copy_text():
    assert copy_text("  纯棉白色T恤 ", " 夏季短袖 ") == "纯棉白色T恤\n夏季短袖"
    assert copy_text("Title", "") == "Title"
    assert copy_text("Title", None) == "Title"
    assert copy_text("Title", "desc") != copy_text("Title desc", "")


@pytest.mark.parametrize(
    "name, kind, hint",
    [
        ("resnet-9000", "image", "'efficientnet-lite0'"),
        ("use-m3", "image", "'efficientnet-lite0'"),  # a text encoder cannot embed pictures
        ("efficientnet-lite0", "text", "'use-m3'"),
        ("torchvision:resnet18", "text", "'use-m3'"),
        ("", "text", "'use-m3'"),
    ],
)
def test_unknown_encoder_clear_error(name, kind, hint):
    with pytest.raises(ValueError) as info:
        get_encoder(name, kind)
    message = str(info.value)
    assert f"unknown {kind} encoder {name!r}" in message
    assert hint in message and "hf:<model dir or hub id>" in message


# ---------------------------------------------------------------- transformers, tiny random models
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer CLIP with a character-level BPE tokenizer, saved to disk."""
    import torch
    import transformers as tf

    folder = tmp_path_factory.mktemp("tiny-clip")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({f"{c}</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = tf.CLIPTokenizer(
        vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt")
    )
    config = tf.CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=24,
    )
    torch.manual_seed(0)
    tf.CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tf.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT with a word-piece vocabulary written to vocab.txt."""
    import torch
    import transformers as tf

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "red",
        "shirt",
        "steel",
        "cup",
        "##s",
        "白",
        "色",
        "棉",
        "杯",
    ]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = tf.BertTokenizer(vocab=str(folder / "vocab.txt"))
    config = tf.BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    tf.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_clip_text(tiny_clip):
    encoder = get_encoder(f"hf:{tiny_clip}", "text", 1)
    assert isinstance(encoder, HuggingFaceEncoder)
    assert encoder.kind == "text" and encoder.dim == 24  # the projection, not the hidden size
    assert encoder.id.startswith(f"hf:{tiny_clip}@")
    texts = ["a red shirt", "steel cup", "a red shirt and more words than the other one"]
    vectors = encoder.encode(texts)
    assert_unit_rows(vectors, 3, 24)
    np.testing.assert_array_equal(vectors, encoder.encode(texts))
    # padding a batch does not change a row (attention mask honoured)
    np.testing.assert_allclose(encoder.encode(texts[:1])[0], vectors[0], atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_hf_clip_image(tiny_clip, kit):
    encoder = get_encoder(f"hf:{tiny_clip}", "image", 1)
    assert encoder.kind == "image" and encoder.dim == 24
    pictures = [kit.draw_picture("circle", "red", size=(64, 48)), Image.new("L", (20, 50), 30)]
    vectors = encoder.encode(pictures)
    assert_unit_rows(vectors, 2, 24)
    np.testing.assert_array_equal(vectors, encoder.encode(pictures))
    assert not np.allclose(vectors[0], vectors[1])
    # same weights, same id for both kinds: the id names the model, the cache key adds the kind's input
    assert encoder.id == get_encoder(f"hf:{tiny_clip}", "text", 1).id


def test_hf_bert_mean_pooled_text(tiny_bert):
    encoder = HuggingFaceEncoder(str(tiny_bert), "text", threads=1)
    assert encoder.dim == 32
    texts = ["red shirts", "白色棉杯", "steel cup steel cup steel cup"]
    vectors = encoder.encode(texts)
    assert_unit_rows(vectors, 3, 32)
    np.testing.assert_array_equal(
        vectors, HuggingFaceEncoder(str(tiny_bert), "text", threads=1).encode(texts)
    )
    np.testing.assert_allclose(encoder.encode(texts[:1])[0], vectors[0], atol=1e-5)


def test_hf_plain_vision_model_pooled(tmp_path, kit):
    """A vision model without CLIP's API gives its pooled output."""
    import torch
    import transformers as tf

    config = tf.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
    )
    torch.manual_seed(0)
    tf.ViTModel(config).save_pretrained(tmp_path)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    encoder = get_encoder(f"hf:{tmp_path}", "image", 1)
    assert encoder.dim == 32
    pictures = [
        kit.draw_picture("triangle", "green"),
        kit.draw_picture("stripes", "black", size=(80, 40)),
    ]
    vectors = encoder.encode(pictures)
    assert_unit_rows(vectors, 2, 32)
    np.testing.assert_array_equal(vectors, encoder.encode(pictures))


def test_hf_id_changes_when_model_folder_changes(tiny_bert, tmp_path):
    import shutil

    copy = tmp_path / "bert-copy"
    shutil.copytree(tiny_bert, copy)
    before = HuggingFaceEncoder(str(copy), "text", threads=1).id
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert HuggingFaceEncoder(str(copy), "text", threads=1).id != before


def test_offline_environment_is_set():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert os.environ.get("TRANSFORMERS_OFFLINE") == "1"


def test_unknown_hub_id_fails_fast_offline():
    # What is timed is the lookup, not the first import of torch / transformers (tens of seconds
    # on a busy machine when this test runs before any other transformers test, e.g. alone).
    import torch  # noqa: F401
    from transformers import AutoConfig, AutoModel, AutoTokenizer  # noqa: F401

    started = time.monotonic()
    with pytest.raises(OSError):
        get_encoder("hf:trialcast-tests/no-such-model", "text", 1)
    assert time.monotonic() - started < 5

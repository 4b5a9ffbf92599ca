"""Turn pictures and copy into vectors through the cache: nothing unchanged is embedded twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from features import engine
from features.cache import EmbeddingCache, content_key
from features.config import Settings
from features.encoders import Encoder, copy_text, get_encoder
from features.images import decoded_or_decode
from features.threads import encoder_threads


@dataclass
class Embeddings:
    """Unit-length picture and copy vectors, one row per SKU; a SKU with no picture has a NaN row."""

    picture: np.ndarray
    copy: np.ndarray
    picture_encoder: str
    copy_encoder: str
    computed: int = 0  # how many vectors were freshly computed (the rest came from the cache)


Chunks = Callable[[list[tuple[str, bytes | str]]], Iterator[dict[str, np.ndarray]]]


def _embed(
    payloads: Sequence[bytes | str | None],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    encode_chunks: Chunks,
    progress: bool,
    label: str,
) -> tuple[np.ndarray, int]:
    """Vectors of the payloads: cached ones read, the rest encoded chunk by chunk (here or on Ray)
    and each chunk written to the cache in one transaction as it arrives (a killed run keeps them)."""
    out = np.full((len(payloads), encoder.dim), np.nan, dtype=np.float32)
    keys = [content_key(p) if p is not None else None for p in payloads]
    known = cache.get_many(encoder.id, [k for k in keys if k], encoder.dim) if cache else {}
    todo: dict[str, bytes | str] = {}
    for key, payload in zip(keys, payloads):
        if key and key not in known and key not in todo:
            todo[key] = payload
    items = list(todo.items())
    with tqdm(total=len(items), desc=label, unit="item", disable=not progress or not items, leave=False) as bar:
        for fresh in encode_chunks(items) if items else ():
            if cache:
                cache.put_many(encoder.id, fresh)
            known.update(fresh)
            bar.update(len(fresh))
    for i, key in enumerate(keys):
        if key:
            out[i] = known[key]
    return out, len(items)


def _chunks(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _decoder(settings: Settings) -> Callable[[bytes], Image.Image]:
    """Bytes to image; a ``CheckedPicture`` (the service's validated upload) is not decoded again."""
    def decode(data: bytes) -> Image.Image:
        return decoded_or_decode(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    return decode


def _local(encoder: Encoder, decode: Callable, size: int) -> Chunks:
    """Encode in this process, ``size`` items per encoder call."""
    def run(items: list[tuple[str, bytes | str]]) -> Iterator[dict[str, np.ndarray]]:
        for chunk in _chunks(items, size):
            vectors = encoder.encode([decode(p) for _, p in chunk])
            yield {key: vectors[i] for i, (key, _) in enumerate(chunk)}
    return run


def _runner(settings: Settings, kind: str, encoder: Encoder, size: int) -> Chunks:
    """This process, or Ray (``features.engine``) when the engine choice and the job's size say so."""
    local = _local(encoder, _decoder(settings) if kind == "image" else (lambda t: t), size)

    def run(items: list[tuple[str, bytes | str]]) -> Iterator[dict[str, np.ndarray]]:
        if not engine.use_ray(settings.embed_engine, len(items), settings.ray_min_embeddings):
            return local(items)
        from features.scale import encode_on_ray

        return encode_on_ray(_chunks(items, size), kind, encoder.dim, settings)
    return run


def embed_frame(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    images: Sequence[bytes | None] | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
) -> Embeddings:
    """Embed the rows of a validated catalogue frame.

    Pictures come from ``frame.image_path`` unless ``images`` (raw bytes, e.g. an upload) is given.
    """
    picture_encoder = get_encoder(settings.image_encoder, "image", encoder_threads(settings, "image"), settings.home)
    copy_encoder = get_encoder(settings.text_encoder, "text", encoder_threads(settings, "text"), settings.home)
    if images is None:
        images = [Path(p).read_bytes() if isinstance(p, str) and p else None for p in frame["image_path"]]
    picture, n_pictures = _embed(list(images), picture_encoder, cache,
                                 _runner(settings, "image", picture_encoder, settings.batch_size), progress, "pictures")
    copy, n_copies = _embed_copy(frame, copy_encoder, cache, progress, settings)
    return Embeddings(picture, copy, picture_encoder.id, copy_encoder.id, n_pictures + n_copies)


COPY_BATCH = 256  # copies per encoder call (the copy encoder's best batch on 1 thread)


def _embed_copy(frame: pd.DataFrame, encoder: Encoder, cache: EmbeddingCache | None, progress: bool,
                settings: Settings) -> tuple[np.ndarray, int]:
    texts = [copy_text(t, d) for t, d in zip(frame["title"], frame["description"].fillna(""))]
    return _embed(texts, encoder, cache, _runner(settings, "text", encoder, COPY_BATCH), progress, "copy")


def _copy_encoder(settings: Settings) -> Encoder:
    return get_encoder(settings.text_encoder, "text", encoder_threads(settings, "text"), settings.home)


def embed_copy(frame: pd.DataFrame, settings: Settings, *, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Copy vectors alone, e.g. of the title alone for rows whose description training masks."""
    return _embed_copy(frame, _copy_encoder(settings), cache, False, settings)[0]


def copy_entries(frames: Sequence[pd.DataFrame], settings: Settings,
                 cache: EmbeddingCache) -> tuple[str, dict[str, np.ndarray]]:
    """The cached copy vectors of these rows, by content key, with the copy encoder's id: what a
    process without this cache (a Ray worker on a cluster) needs to read them as this one does."""
    encoder = _copy_encoder(settings)
    keys = [content_key(copy_text(t, d)) for f in frames for t, d in zip(f["title"], f["description"].fillna(""))]
    return encoder.id, cache.get_many(encoder.id, keys, encoder.dim)

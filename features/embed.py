"""Turn pictures and copy into vectors through the cache: nothing unchanged is embedded twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from features.cache import EmbeddingCache, content_key
from features.config import Settings
from features.encoders import Encoder, copy_text, get_encoder
from features.images import decode_image
from features.threads import encoder_threads


@dataclass
class Embeddings:
    """Unit-length picture and copy vectors, one row per SKU; a SKU with no picture has a NaN row."""

    picture: np.ndarray
    copy: np.ndarray
    picture_encoder: str
    copy_encoder: str
    computed: int = 0  # how many vectors were freshly computed (the rest came from the cache)


def _embed(
    payloads: Sequence[bytes | str | None],
    encoder: Encoder,
    cache: EmbeddingCache | None,
    decode: Callable[[bytes | str], object],
    batch_size: int,
    progress: bool,
    label: str,
) -> tuple[np.ndarray, int]:
    out = np.full((len(payloads), encoder.dim), np.nan, dtype=np.float32)
    keys = [content_key(p) if p is not None else None for p in payloads]
    known = cache.get_many(encoder.id, [k for k in keys if k], encoder.dim) if cache else {}
    todo: dict[str, bytes | str] = {}
    for key, payload in zip(keys, payloads):
        if key and key not in known and key not in todo:
            todo[key] = payload
    items = list(todo.items())
    with tqdm(total=len(items), desc=label, unit="item", disable=not progress or not items, leave=False) as bar:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            vectors = encoder.encode([decode(p) for _, p in chunk])
            fresh = {key: vectors[i] for i, (key, _) in enumerate(chunk)}
            if cache:
                cache.put_many(encoder.id, fresh)
            known.update(fresh)
            bar.update(len(chunk))
    for i, key in enumerate(keys):
        if key:
            out[i] = known[key]
    return out, len(items)


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

    def decode(data: bytes) -> Image.Image:
        return decode_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)

    picture, n_pictures = _embed(
        list(images), picture_encoder, cache, decode, settings.batch_size, progress, "pictures"
    )
    copy, n_copies = _embed_copy(frame, copy_encoder, cache, progress)
    return Embeddings(picture, copy, picture_encoder.id, copy_encoder.id, n_pictures + n_copies)


def _embed_copy(frame: pd.DataFrame, encoder: Encoder, cache: EmbeddingCache | None, progress: bool
                ) -> tuple[np.ndarray, int]:
    texts = [copy_text(t, d) for t, d in zip(frame["title"], frame["description"].fillna(""))]
    return _embed(texts, encoder, cache, lambda t: t, 256, progress, "copy")


def embed_copy(frame: pd.DataFrame, settings: Settings, *, cache: EmbeddingCache | None = None) -> np.ndarray:
    """Copy vectors alone, e.g. of the title alone for rows whose description training masks."""
    encoder = get_encoder(settings.text_encoder, "text", encoder_threads(settings, "text"), settings.home)
    return _embed_copy(frame, encoder, cache, False)[0]

"""Embedding as a Ray Data pipeline: an actor pool in which each worker loads the encoder once and
encodes whole chunks; the vectors come back to this process, which writes each chunk to the
embedding cache in one transaction as it arrives (``features.embed``). So the cluster never writes
the cache (one SQLite file stays the source of truth, and a cluster needs no access to it), a chunk
is encoded by the same code in the same composition as on one machine (the same vectors), and a
killed worker's chunk is run again by Ray (``max_restarts`` of Ray Data's actor pool) while a killed
job keeps every chunk already written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from features import engine
from features.config import Settings


class ChunkEncoder:
    """A Ray Data actor: one encoder (``kind`` ``image`` or ``text``) loaded once, whole chunks encoded."""

    def __init__(self, settings_json: str, kind: str):
        from features.embed import _decoder
        from features.encoders import get_encoder
        from features.threads import apply, encoder_threads

        settings = Settings.model_validate_json(settings_json)
        apply(settings)
        name = settings.image_encoder if kind == "image" else settings.text_encoder
        self.encoder = get_encoder(name, kind, encoder_threads(settings, kind), settings.home)
        self.decode = _decoder(settings) if kind == "image" else (lambda text: text)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vectors = [np.ascontiguousarray(self.encoder.encode([self.decode(p) for p in payloads]),
                                        dtype=np.float32).tobytes() for payloads in batch["payloads"]]
        return {"chunk": batch["chunk"], "vectors": vectors, "pid": [os.getpid()] * len(vectors)}


def encode_on_ray(chunks: list[list[tuple[str, bytes | str]]], kind: str, dim: int,
                  settings: Settings) -> Iterator[dict[str, np.ndarray]]:
    """Each chunk's ``{key: vector}``, in the order Ray finishes them, encoded by ``ray_workers`` actors."""
    import ray

    with engine.ray_session(settings):
        items = ray.data.from_items([{"chunk": i, "payloads": [p for _, p in chunk]} for i, chunk in enumerate(chunks)],
                                    override_num_blocks=len(chunks))  # one block per chunk: every worker gets work
        done = items.map_batches(ChunkEncoder, batch_size=1, num_cpus=1,
                                 compute=ray.data.ActorPoolStrategy(size=settings.ray_workers),
                                 fn_constructor_args=(engine.portable(settings), kind))
        for row in done.iter_rows():
            chunk = chunks[int(row["chunk"])]
            vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(chunk), dim)
            yield {key: vectors[i] for i, (key, _) in enumerate(chunk)}

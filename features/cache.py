"""Embedding cache keyed by (encoder id, content hash), in one SQLite file.

SQLite gives what a folder of .npy files would need hand-written locking for: several processes
may write at once (WAL journal, busy timeout), and a batch is one transaction, so a run killed
half way leaves either the whole batch or none of it, never a torn vector.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    encoder TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (encoder, key)
) WITHOUT ROWID
"""


def content_key(data: bytes | str) -> str:
    """Hash of what is embedded: the picture's bytes or the copy's UTF-8 text."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _use_wal(db: sqlite3.Connection, seconds: float = 120.0) -> None:
    """Switch to WAL, retrying while another process holds the lock. SQLite answers "database is
    locked" to a journal-mode change without calling the busy handler (the connection timeout does
    not apply), so two processes opening a new cache at once would fail without this loop."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class EmbeddingCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        _use_wal(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, encoder: str, keys: Iterable[str], dim: int) -> dict[str, np.ndarray]:
        """Cached vectors for those keys that have one of the right size."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, dim, vector FROM embeddings WHERE encoder = ? AND key IN ({marks})",
                [encoder, *chunk],
            )
            for key, stored_dim, blob in rows:
                # A vector of the wrong size is treated as absent and recomputed (checked on the
                # byte length first: frombuffer raises on a length that is not a multiple of 4).
                if stored_dim == dim and isinstance(blob, bytes) and len(blob) == 4 * dim:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, encoder: str, items: dict[str, np.ndarray]) -> None:
        """Store vectors in one transaction (all or nothing)."""
        rows = [
            (encoder, key, int(v.size), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for key, v in items.items()
        ]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def count(self, encoder: str | None = None) -> int:
        if encoder is None:
            return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM embeddings WHERE encoder = ?", [encoder]).fetchone()[0]

    def close(self) -> None:
        self._db.close()

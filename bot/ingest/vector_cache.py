"""Vectors already computed, kept by model and text, so ingest embeds only text it has not seen.

Embedding is nearly all of a build's time (about 20 passages/s for the default model on two
cores). A `--rebuild`, a new chunker version or an edited curated file changes few texts, so
most vectors can be reused: `CachedVectors` wraps the ingest's embedder and looks each text up
in a small SQLite file in DATA_DIR before embedding it.

Rows are keyed by a digest of (backend, model, dimension, query or passage, text), so another
model never reuses them. They hold knowledge text vectors only, never chat text. A row not used
for `MAX_AGE_DAYS` is dropped, and the file keeps at most `MAX_ROWS` rows (least recently used
go first). A cache that cannot be opened or read is set aside: ingest then embeds as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.embedding import Embedder

log = logging.getLogger(__name__)

FILE = "vector-cache.sqlite3"
MAX_AGE_DAYS = 90
MAX_ROWS = 100_000  # about 150 MB at 384 dimensions; 10× the shipped knowledge is 13,000
_DAY = 86_400


class VectorCache:
    """The SQLite file of vectors (one connection, used by the ingest that holds the lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        try:
            self._db = sqlite3.connect(path, timeout=5.0)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(key TEXT PRIMARY KEY, vector BLOB NOT NULL, used INTEGER NOT NULL)"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            self._set_aside(exc)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def get(self, keys: Sequence[str], dimension: int) -> dict[str, np.ndarray]:
        """The stored vectors among these keys (marked as used today)."""
        if self._db is None or not keys:
            return {}
        found: dict[str, np.ndarray] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (dimension,):
                        found[key] = vector.copy()
                self._db.execute(
                    f"UPDATE vectors SET used = ? WHERE key IN ({marks})", [_today(), *chunk]
                )
            self._db.commit()
        except sqlite3.Error as exc:
            self._set_aside(exc)
            return {}
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        if self._db is None or not items:
            return
        today = _today()
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes(), today) for k, v in items.items()]
        try:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            self._db.commit()
        except sqlite3.Error as exc:
            self._set_aside(exc)

    def prune(self, max_age_days: int = MAX_AGE_DAYS, max_rows: int = MAX_ROWS) -> int:
        """Drop rows unused for max_age_days, then the least recently used above max_rows."""
        if self._db is None:
            return 0
        try:
            before = self._db.total_changes
            self._db.execute("DELETE FROM vectors WHERE used < ?", (_today() - max_age_days,))
            self._db.execute(
                "DELETE FROM vectors WHERE key NOT IN "
                "(SELECT key FROM vectors ORDER BY used DESC, key LIMIT ?)",
                (max_rows,),
            )
            self._db.commit()
            return self._db.total_changes - before
        except sqlite3.Error as exc:
            self._set_aside(exc)
            return 0

    def rows(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _set_aside(self, exc: Exception) -> None:
        """A broken cache costs time, never a build: move it away and go on without it."""
        log.warning("ingest: the vector cache %s is unusable (%s); set aside", self.path, exc)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        with contextlib.suppress(OSError):
            self.path.replace(self.path.with_suffix(".broken"))


class CachedVectors:
    """An embedder that takes stored vectors where it can and stores the ones it computes."""

    def __init__(self, inner: Embedder, cache: VectorCache) -> None:
        self.inner = inner
        self.cache = cache
        self.reused = 0
        self.embedded = 0

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed("query", [text], lambda texts: self.inner.embed_query(texts[0])[None])[0]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed("passage", list(texts), self.inner.embed_passages)

    def _embed(self, kind: str, texts: list[str], compute) -> np.ndarray:
        dimension = self.inner.dimension
        out = np.zeros((len(texts), dimension), dtype=np.float32)
        if not texts:
            return out
        keys = [self._key(kind, t) for t in texts]
        found = self.cache.get(keys, dimension)
        missing = [i for i, k in enumerate(keys) if k not in found]
        for i, key in enumerate(keys):
            if key in found:
                out[i] = found[key]
        if missing:
            vectors = np.asarray(compute([texts[i] for i in missing]), dtype=np.float32)
            out[missing] = vectors.reshape(len(missing), dimension)
            self.cache.put({keys[i]: out[i] for i in missing})
        self.reused += len(texts) - len(missing)
        self.embedded += len(missing)
        return out

    def _key(self, kind: str, text: str) -> str:
        model = f"{self.inner.backend}\0{self.inner.model}\0{self.inner.dimension}\0{kind}\0"
        return hashlib.sha256((model + text).encode("utf-8", "surrogatepass")).hexdigest()[:40]

    def __getattr__(self, name: str):
        """backend, model and dimension are the inner model's."""
        return getattr(self.inner, name)


def open_for(data_dir: Path, embedder: Embedder) -> CachedVectors | None:
    """The embedder behind the DATA_DIR cache, or None when the cache cannot be used."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    cache = VectorCache(data_dir / FILE)
    if not cache.usable:  # the broken file was set aside: start a new one
        cache = VectorCache(data_dir / FILE)
    return CachedVectors(embedder, cache) if cache.usable else None


def _today() -> int:
    return int(time.time() // _DAY)

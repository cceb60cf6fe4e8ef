"""The Chroma collection that holds the knowledge chunks.

Embedded (`PersistentClient` under DATA_DIR) by default, `HttpClient` when CHROMA_HOST is set.
The collection's metadata records which embedder built it; a query or update with another
embedder is refused. Chunk ids carry a content hash (`doc_id#hash#n`), so a changed document's
new generation can be written before the old one is deleted: a crash in between leaves two
generations, never none, and the next ingest removes the stale one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import re
import shutil
import stat
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Settings
from bot.errors import DataDirNotWritable, ModelMismatch, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

_BATCH = 500
REBUILD_HINT = "Run `python ingest.py --rebuild` to rebuild the index with the configured model."


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: id, text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class DocVersions:
    """The chunk ids stored for one document, grouped by content hash."""

    by_hash: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    metadata: dict[str, Any] = field(default_factory=dict)


def open_client(settings: Settings, read_only_ok: bool = False):
    """A Chroma client: HTTP when CHROMA_HOST is set, else persistent under DATA_DIR.

    With read_only_ok (answering, never ingesting), a read-only DATA_DIR is served from a
    private copy instead of failing.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        except Exception as exc:  # chromadb raises plain Exception/ValueError on connect
            raise StoreUnavailable(
                f"The Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                f"cannot be reached ({exc.__class__.__name__})."
            ) from exc
    path = settings.chroma_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        if not (read_only_ok and (path / "chroma.sqlite3").exists()):
            raise DataDirNotWritable(
                f"DATA_DIR {settings.data_dir} cannot be written ({exc.strerror}). "
                "Point DATA_DIR at a writable folder."
            ) from exc
        path = _private_copy(path)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


_SEGMENT_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def remove_orphan_segments(settings: Settings) -> list[str]:
    """Delete vector-index folders of collections that no longer exist (embedded store only).

    Chroma leaves a dropped collection's segment folder on disk (a rebuild drops one per
    run), so without this the store grows with every `--rebuild`. Only UUID-named folders
    that Chroma's own catalogue no longer lists are removed; call it under the ingest lock.
    """
    import sqlite3

    if settings.chroma_host:
        return []
    path = settings.chroma_dir
    catalogue = path / "chroma.sqlite3"
    if not catalogue.exists():
        return []
    with contextlib.closing(sqlite3.connect(catalogue, timeout=10)) as db:
        live = {row[0] for row in db.execute("SELECT id FROM segments")}
    removed = []
    for child in path.iterdir():
        if child.is_dir() and _SEGMENT_DIR.match(child.name) and child.name not in live:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    if removed:
        log.info(
            "store: removed %d leftover segment folder(s) of dropped collections", len(removed)
        )
    return removed


def _private_copy(path: Path) -> Path:
    """A writable copy of a read-only embedded store, for answering only.

    Chroma cannot open its SQLite file read-only ("attempt to write a readonly database"), and
    serving from a read-only volume is normal in containers. The copy lives in the temporary
    folder for this process; refreshes must be made where the store is writable.
    """
    copy = Path(tempfile.mkdtemp(prefix="spoerg-raadet-chroma-"))
    atexit.register(shutil.rmtree, copy, True)
    shutil.copytree(path, copy, dirs_exist_ok=True)
    for item in [copy, *copy.rglob("*")]:
        item.chmod(item.stat().st_mode | stat.S_IWUSR)
    log.warning("store: DATA_DIR %s is read-only; answering from a private copy in %s", path, copy)
    return copy


class KnowledgeStore:
    """The knowledge collection with the operations ingest and retrieval need."""

    def __init__(self, client, name: str, connect: Callable[[], Any] | None = None) -> None:
        self._connected = client
        self._connect = connect
        self.name = name
        self._collection = None

    @classmethod
    def open(cls, settings: Settings, read_only_ok: bool = False) -> KnowledgeStore:
        """Open the configured store (the collection itself is opened lazily).

        A Chroma server is connected to on first use, and again after a failed attempt, so a
        bot started before its server comes up answers "try again shortly" until it does.
        """
        if settings.chroma_host:
            return cls(None, settings.collection, connect=lambda: open_client(settings))
        return cls(open_client(settings, read_only_ok), settings.collection)

    @property
    def _client(self):
        if self._connected is None:
            self._connected = self._connect()
        return self._connected

    # -- collection ---------------------------------------------------------------------------

    def _call(self, fn, *args, **kwargs):
        """Run a Chroma call, turning connection failures into StoreUnavailable."""
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                self._collection = None
                raise StoreUnavailable(
                    "The Chroma server cannot be reached right now; try again shortly."
                ) from exc
            raise

    @property
    def collection(self):
        if self._collection is None:
            self._collection = self._call(
                self._client.get_or_create_collection,
                self.name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collection

    def exists(self) -> bool:
        """Whether the collection has been created (without creating it)."""
        names = self._call(self._client.list_collections)
        return any(getattr(c, "name", c) == self.name for c in names)

    def info(self) -> dict[str, Any]:
        """The collection's metadata (embedder, last refresh), read fresh from the store.

        A cached Collection object keeps the metadata it was fetched with; another process (an
        ingest against a Chroma server) changes it behind our back.
        """
        self._collection = None
        return dict(self.collection.metadata or {})

    def count(self) -> int:
        return int(self._call(self.collection.count))

    def check_embedder(self, backend: str, model: str, dimension: int | None) -> None:
        """Refuse to use a collection that another embedder built."""
        meta = self.info()
        if self.count() == 0 or "embedding_model" not in meta:
            return
        stored = (meta.get("embedding_backend"), meta.get("embedding_model"))
        if stored != (backend, model) or (
            dimension is not None and meta.get("embedding_dim") not in (None, dimension)
        ):
            raise ModelMismatch(
                f"The index was built with {stored[0]}/{stored[1]} "
                f"(dimension {meta.get('embedding_dim')}), but {backend}/{model} is configured. "
                + REBUILD_HINT
            )

    def record(self, **values: str | int | float | bool) -> None:
        """Merge values into the collection's metadata."""
        meta = {k: v for k, v in self.info().items() if not k.startswith("hnsw:")}
        meta.update(values)
        self._call(self.collection.modify, metadata=meta)

    def mark_refreshed(self, backend: str, model: str, dimension: int) -> None:
        self.record(
            embedding_backend=backend,
            embedding_model=model,
            embedding_dim=dimension,
            last_refresh=datetime.now(UTC).isoformat(timespec="seconds"),
            # Two refreshes within one second must still look different to a running bot.
            refresh_id=uuid.uuid4().hex,
        )

    def sibling(self, name: str) -> KnowledgeStore:
        """Another collection on the same client (a rebuild is written beside the live one)."""
        return KnowledgeStore(self._client, name)

    def curated_answers(self) -> KnowledgeStore:
        """The collection of curated answers' question variants, beside this one."""
        return self.sibling(f"{self.name}-svar")

    def replace_with(self, other: KnowledgeStore) -> None:
        """Make `other` this store's collection: drop ours, rename theirs to our name."""
        self.reset()
        self._call(other.collection.modify, name=self.name)
        other._collection = None

    def reset(self) -> None:
        """Drop the collection (used by --rebuild)."""
        if self.exists():
            self._call(self._client.delete_collection, self.name)
        self._collection = None

    # -- chunks -------------------------------------------------------------------------------

    def doc_versions(self) -> dict[str, DocVersions]:
        """Every stored document with its chunk ids per content hash."""
        got = self._call(self.collection.get, include=["metadatas"])
        docs: dict[str, DocVersions] = defaultdict(DocVersions)
        for chunk_id, meta in zip(got["ids"], got["metadatas"], strict=True):
            version = docs[meta["doc_id"]]
            version.by_hash[meta.get("doc_hash", "")].append(chunk_id)
            version.metadata = meta
        return dict(docs)

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk with text and metadata (for BM25 and listings)."""
        got = self._call(self.collection.get, include=["documents", "metadatas"])
        return [
            StoredChunk(i, d, m)
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]

    def all_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embedding of each chunk id (the retriever scores all units with them).

        After a killed ingest, Chroma can hold a chunk whose vector never reached its vector
        index, and asking for it fails the whole request: such ids are found by halving the
        request and left out, so the rest keeps serving until the next ingest repairs them.
        """
        from chromadb.errors import ChromaError

        vectors: dict[str, np.ndarray] = {}
        pending = [list(ids[i : i + _BATCH]) for i in range(0, len(ids), _BATCH)]
        while pending:
            batch = pending.pop()
            try:
                got = self._call(self.collection.get, ids=batch, include=["embeddings"])
            except ChromaError:
                if len(batch) > 1:
                    pending += [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
                else:
                    log.warning("store: chunk %s has no vector (run `python ingest.py`)", batch[0])
                continue
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                vectors[chunk_id] = np.asarray(vector, dtype=np.float32)
        return vectors

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        for start in range(0, len(ids), _BATCH):
            end = start + _BATCH
            self._call(
                self.collection.upsert,
                ids=list(ids[start:end]),
                embeddings=embeddings[start:end].tolist(),
                documents=list(texts[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def update_metadatas(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Replace the metadata of stored rows, keeping their vectors."""
        for start in range(0, len(ids), _BATCH):
            end = start + _BATCH
            self._call(
                self.collection.update,
                ids=list(ids[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def metadatas(self) -> dict[str, dict[str, Any]]:
        """Every row's metadata by id."""
        got = self._call(self.collection.get, include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"], strict=True))

    def rows_with_vectors(self) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Every row's text, vector and metadata (small collections: the curated answers)."""
        got = self._call(self.collection.get, include=["documents", "embeddings", "metadatas"])
        vectors = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(got["ids"]), -1)
        return list(got["documents"]), vectors, list(got["metadatas"])

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), _BATCH):
            self._call(self.collection.delete, ids=ids[start : start + _BATCH])

    def query(
        self, embedding: np.ndarray, k: int, ids: Sequence[str] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """The k nearest chunks with cosine similarity (1 - distance), optionally among ids."""
        k = min(k, max(len(ids) if ids else self.count(), 1))
        got = self._call(
            self.collection.query,
            query_embeddings=[embedding.tolist()],
            n_results=k,
            include=["documents", "metadatas", "distances"],
            **({"ids": list(ids)} if ids else {}),
        )
        return [
            (StoredChunk(i, d, m), 1.0 - float(dist))
            for i, d, m, dist in zip(
                got["ids"][0],
                got["documents"][0],
                got["metadatas"][0],
                got["distances"][0],
                strict=True,
            )
        ]


def _is_connection_error(exc: BaseException) -> bool:
    """Whether an exception from chromadb means the server is down or unreachable."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (httpx.TransportError, ConnectionError)):
            return True
        text = str(seen).lower()
        if "could not connect" in text or "connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False

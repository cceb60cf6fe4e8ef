"""Hybrid retrieval: dense (e5 vectors stored in Chroma) and BM25 (Danish stems), fused.

The chunks, their vectors and the BM25 index are loaded from Chroma into memory and reloaded
whenever the collection's `last_refresh` changes, so a refresh by another process is picked up
within seconds; while a Chroma server is away, the loaded index keeps answering.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.embedding import Embedder
from bot.errors import IndexEmpty, StoreUnavailable
from bot.store import KnowledgeStore, StoredChunk
from bot.text import Vocabulary, content_terms

log = logging.getLogger(__name__)

_RRF_K = 20
_RECHECK_SECONDS = 5.0


@dataclass
class Query:
    """What to search for: weighted stems of the user's words, plus weaker ones from context."""

    text: str
    terms: dict[str, float]
    embed_text: str = ""
    unknown_names: list[str] = field(default_factory=list)
    inherited_weight: float = 0.4
    vector: np.ndarray | None = None  # the embedded question, set by `HybridRetriever.pool`

    @classmethod
    def from_text(
        cls,
        text: str,
        context: str = "",
        vocabulary: Vocabulary | None = None,
        language: str | None = None,
    ) -> Query:
        """Terms and embedding text of a question; spelling is corrected within its language."""
        vocabulary = vocabulary or Vocabulary()
        terms: dict[str, float] = {}
        for term, weight in vocabulary.query_terms(text, language):
            terms[term] = max(terms.get(term, 0.0), weight)
        for term, weight in vocabulary.query_terms(context, language):
            terms.setdefault(term, weight * cls.inherited_weight)
        return cls(
            text=f"{text} {context}".strip() if context else text,
            terms=terms,
            embed_text=vocabulary.corrected(text, language) + (f" {context}" if context else ""),
            unknown_names=vocabulary.unknown_names(text, language) if vocabulary._stems else [],
        )

    def weights(self) -> dict[str, float]:
        """Stem → weight."""
        return dict(self.terms)


@dataclass
class Passage:
    """A retrieved chunk with its scores."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    dense: float
    lexical: float
    signals: dict[str, float] = field(default_factory=dict)  # ranks and neighbours (`pool`)

    @property
    def doc_id(self) -> str:
        return self.metadata["doc_id"]


class HybridRetriever:
    """Dense + BM25 retrieval over the knowledge collection."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self._lock = threading.Lock()
        self._loaded_refresh: str | None = None
        self._refreshed_at: str | None = None
        self._checked_at = 0.0
        self.chunks: list[StoredChunk] = []
        self._bm25 = None
        self.vocabulary = Vocabulary(())
        self.idf: Callable[[str], float] = idf_from_tokens([])
        self._terms: dict[str, frozenset[str]] = {}
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._centrality = np.zeros(0, dtype=np.float32)
        self._neighbours = np.zeros((0, 2), dtype=np.int64)
        self._parts: dict[str, tuple[list[str], np.ndarray]] = {}

    # -- index --------------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory BM25 index from the chunks in Chroma."""
        import bm25s

        info = self.store.info()
        refresh = _refresh_key(info)
        if info.get("build") == "incomplete":
            log.warning(
                "retriever: the index build was interrupted; answering from a partial index "
                "until `python ingest.py` finishes it"
            )
        chunks = self.store.all_chunks()
        if not chunks:
            raise IndexEmpty("The knowledge index is empty. Run `python ingest.py` first.")
        # Two generations of one document can coexist after a crashed ingest: keep the newest.
        chunks = _one_generation_per_doc(chunks)
        parts = [c for c in chunks if c.metadata.get("form") == "part"]
        chunks = [c for c in chunks if c.metadata.get("form") != "part"]
        vocabulary = Vocabulary(
            (f"{c.metadata.get('title', '')} {c.text}", c.metadata.get("language", ""))
            for c in chunks
        )
        corpus = [self._lexical_tokens(c) for c in chunks]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        # Composer weights come from the chunks' own words (title and text), not the BM25 fields.
        idf = idf_from_tokens(
            [content_terms(f"{c.metadata.get('title', '')} {c.text}") for c in chunks]
        )
        position = {
            (c.metadata["doc_id"], int(c.metadata.get("chunk", 0))): i for i, c in enumerate(chunks)
        }
        vectors = self.store.all_vectors([c.id for c in chunks + parts])
        matrix = _unit_matrix(chunks, vectors)
        neighbours = _neighbour_rows(chunks, position)
        by_parent = _parts_by_parent(chunks, parts, position, vectors)
        with self._lock:
            self.chunks, self._bm25, self.vocabulary, self.idf = chunks, bm25, vocabulary, idf
            self._matrix, self._neighbours, self._parts = matrix, neighbours, by_parent
            # A unit close to the centre of the collection resembles every question a little
            # ("Our sources do not say …"); the ranker learns how much that is worth.
            centre = matrix.mean(axis=0) if len(matrix) else matrix.sum(axis=0)
            self._centrality = matrix @ (centre / (np.linalg.norm(centre) or 1.0))
            self._terms: dict[str, frozenset[str]] = {}
            self._loaded_refresh = refresh
            self._refreshed_at = info.get("last_refresh")
            self._checked_at = time.monotonic()
        log.info("retriever: %d chunks loaded (refresh %s)", len(chunks), refresh)

    @staticmethod
    def _lexical_tokens(chunk: StoredChunk) -> list[str]:
        meta = chunk.metadata
        head = f"{meta.get('title', '')} {meta.get('section', '')}"
        return content_terms(f"{head}\n{chunk.text}")

    def parts_of(self, chunk_id: str, vector: np.ndarray | None) -> list[tuple[str, float]]:
        """The items of a whole list with their similarity to the question (else empty)."""
        found = self._parts.get(chunk_id)
        if found is None or vector is None:
            return []
        texts, matrix = found
        sims = matrix @ (vector / (np.linalg.norm(vector) or 1.0))
        return list(zip(texts, (float(x) for x in sims), strict=True))

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Dot products of unit-length question vectors with every unit (rows: questions)."""
        self.ensure_fresh()
        with self._lock:
            matrix = self._matrix
        return vectors @ matrix.T

    def unit_terms(self, chunk_id: str, text: str) -> frozenset[str]:
        """Index terms of one chunk's own text (cached per chunk)."""
        cached = self._terms.get(chunk_id)
        if cached is None:
            cached = frozenset(content_terms(text))
            self._terms[chunk_id] = cached
        return cached

    def ensure_fresh(self) -> None:
        """Reload when the collection was refreshed since the last load (checked every 5 s)."""
        if self._bm25 is None:
            self.load()
            return
        if time.monotonic() - self._checked_at < _RECHECK_SECONDS:
            return
        self._checked_at = time.monotonic()
        try:
            refresh = _refresh_key(self.store.info())
        except StoreUnavailable:
            # The whole index is in memory: keep answering from it while the server is away.
            log.warning("retriever: the store cannot be reached; serving the loaded index")
            return
        if refresh != self._loaded_refresh:
            self.load()

    @property
    def refreshed_at(self) -> str | None:
        """When the loaded index was last refreshed (ISO time, for people)."""
        return self._refreshed_at

    @property
    def generation(self) -> str | None:
        """Changes with every refresh of the loaded index (for caches of derived data)."""
        return self._loaded_refresh

    # -- search -------------------------------------------------------------------------------

    def search(
        self, query: Query, k: int = 8, fusion: tuple[str, float] = ("cc", 0.5)
    ) -> list[Passage]:
        """The k best units by fused score."""
        return self.pool(query, size=k, fusion=fusion)[:k]

    def pool(
        self,
        query: Query,
        size: int = 24,
        fusion: tuple[str, float] = ("cc", 0.5),
        shift: np.ndarray | None = None,
    ) -> list[Passage]:
        """Candidate units for the ranker, best fused first, each with its retrieval signals.

        Every unit is scored against the question (one product with the stored vectors), so
        ranks and a unit's neighbours all have a similarity. The pool is the best `size` by
        fused score plus the best `size` // 2 by each list alone. `fusion` is ("cc", weight of
        dense) for a convex combination of min-max normalised scores, or ("rrf", weight of
        dense) for reciprocal-rank fusion.
        `shift` is subtracted from the question's unit vector before it is compared with the
        units (`Params.language_shift`); `query.vector` keeps the question's own embedding.
        """
        self.ensure_fresh()
        with self._lock:
            chunks, bm25, matrix = self.chunks, self._bm25, self._matrix
            neighbours, centrality = self._neighbours, self._centrality
        n = len(chunks)
        vector = self.embedder.embed_query(query.embed_text or query.text)
        query.vector = vector
        vector = vector / (np.linalg.norm(vector) or 1.0)
        if shift is not None:
            vector = vector - shift
        sims = matrix @ (vector / (np.linalg.norm(vector) or 1.0))
        lexical = _bm25_scores(bm25, query)
        lexical = np.zeros(n, dtype=np.float32) if lexical is None else np.maximum(lexical, 0)
        dense_rank = _ranks(sims)
        lexical_rank = np.where(lexical > 0, _ranks(lexical), n)
        fused = _fused(sims, lexical, dense_rank, lexical_rank, fusion)
        order = np.argsort(-fused, kind="stable")
        rows = list(order[:size])
        rows += [int(i) for i in np.argsort(-sims, kind="stable")[: size // 2]]
        rows += [int(i) for i in np.argsort(-lexical, kind="stable")[: size // 2] if lexical[i] > 0]
        doc_best: dict[str, float] = {}
        doc_dense: dict[str, float] = {}
        for i in order:
            doc_best.setdefault(chunks[i].metadata["doc_id"], float(fused[i]))
        for i in np.argsort(-sims, kind="stable"):
            doc_dense.setdefault(chunks[i].metadata["doc_id"], float(sims[i]))
        doc_rank = {d: r for r, d in enumerate(doc_best)}
        top_dense, top_lexical = float(sims.max(initial=0.0)), float(lexical.max(initial=0.0))
        passages = []
        for i in sorted(set(int(r) for r in rows), key=lambda r: -fused[r]):
            doc = chunks[i].metadata["doc_id"]
            around = [sims[j] for j in neighbours[i] if j >= 0]
            signals = {
                "dense_rank": float(dense_rank[i]),
                "lexical_rank": float(lexical_rank[i]),
                "lexical_norm": float(lexical[i] / top_lexical) if top_lexical else 0.0,
                "window_dense": float(max(around)) if around else float(sims[i]),
                "top_dense": top_dense,
                "top_lexical": top_lexical,
                "doc_rank": float(doc_rank[doc]),
                "doc_best": doc_best[doc],
                "doc_dense": doc_dense[doc],
                "centrality": float(centrality[i]),
            }
            passages.append(
                Passage(
                    chunks[i].id,
                    chunks[i].text,
                    chunks[i].metadata,
                    float(fused[i]),
                    float(sims[i]),
                    float(lexical[i]),
                    signals,
                )
            )
        return passages


def _refresh_key(info: dict) -> str | None:
    return info.get("refresh_id") or info.get("last_refresh")


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the highest value, 1 for the next, …"""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return ranks


def _fused(
    sims: np.ndarray,
    lexical: np.ndarray,
    dense_rank: np.ndarray,
    lexical_rank: np.ndarray,
    fusion: tuple[str, float],
) -> np.ndarray:
    """Convex combination of min-max normalised scores, or reciprocal-rank fusion."""
    method, weight = fusion
    if method == "rrf":
        lexical_part = np.where(lexical > 0, 1.0 / (_RRF_K + lexical_rank + 1), 0.0)
        return weight / (_RRF_K + dense_rank + 1) + (1 - weight) * lexical_part
    low, high = float(sims.min(initial=0.0)), float(sims.max(initial=0.0))
    dense_norm = (sims - low) / (high - low) if high > low else np.zeros_like(sims)
    top = float(lexical.max(initial=0.0))
    lexical_norm = lexical / top if top > 0 else np.zeros_like(lexical)
    return weight * dense_norm + (1 - weight) * lexical_norm


def _unit_matrix(chunks: list[StoredChunk], vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Unit-length stored vectors in chunk order; a chunk without a vector gets zeros."""
    dimension = next((len(v) for v in vectors.values()), 0)
    matrix = np.zeros((len(chunks), dimension), dtype=np.float32)
    for i, chunk in enumerate(chunks):
        vector = vectors.get(chunk.id)
        if vector is not None and len(vector) == dimension:
            matrix[i] = vector / (np.linalg.norm(vector) or 1.0)
    return matrix


def _parts_by_parent(
    chunks: list[StoredChunk],
    parts: list[StoredChunk],
    position: dict[tuple[str, int], int],
    vectors: dict[str, np.ndarray],
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Each whole list's items (in order) and their unit-length vectors, by the list's id.

    A list is left out when any of its parts lacks a vector: it is then quoted whole.
    """
    grouped: dict[str, list[StoredChunk]] = {}
    for part in parts:
        row = position.get((part.metadata["doc_id"], int(part.metadata.get("parent", -1))))
        if row is not None:
            grouped.setdefault(chunks[row].id, []).append(part)
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for parent, group in grouped.items():
        group.sort(key=lambda c: int(c.metadata.get("chunk", 0)))
        if all(c.id in vectors for c in group):
            matrix = _unit_matrix(group, vectors)
            out[parent] = ([c.text for c in group], matrix)
    return out


def _neighbour_rows(chunks: list[StoredChunk], position: dict[tuple[str, int], int]) -> np.ndarray:
    """Row of the unit before and after each unit in its document (-1 where there is none)."""
    out = np.full((len(chunks), 2), -1, dtype=np.int64)
    for i, c in enumerate(chunks):
        doc, index = c.metadata["doc_id"], int(c.metadata.get("chunk", 0))
        out[i] = [position.get((doc, index - 1), -1), position.get((doc, index + 1), -1)]
    return out


def _bm25_scores(bm25, query: Query) -> np.ndarray | None:
    weights = query.weights()
    if not weights:
        return None
    total = None
    for weight in sorted(set(weights.values()), reverse=True):
        terms = [t for t, w in weights.items() if w == weight]
        scores = np.asarray(bm25.get_scores(terms), dtype=np.float32) * weight
        total = scores if total is None else total + scores
    return total


def _one_generation_per_doc(chunks: list[StoredChunk]) -> list[StoredChunk]:
    """Drop the older generation of a document that a crashed ingest left behind."""
    hashes: dict[str, set[str]] = {}
    for c in chunks:
        hashes.setdefault(c.metadata["doc_id"], set()).add(c.metadata.get("doc_hash", ""))
    if all(len(h) == 1 for h in hashes.values()):
        return chunks
    newest: dict[str, tuple[str, str]] = {}
    for c in chunks:
        key = (c.metadata.get("indexed_at", ""), c.metadata.get("doc_hash", ""))
        doc_id = c.metadata["doc_id"]
        newest[doc_id] = max(newest.get(doc_id, key), key)
    return [c for c in chunks if c.metadata.get("doc_hash", "") == newest[c.metadata["doc_id"]][1]]


def idf_from_tokens(token_lists: list[list[str]]) -> Callable[[str], float]:
    """A smoothed IDF function over the indexed chunks (a term never seen gets the maximum)."""
    n = len(token_lists)
    df: dict[str, int] = {}
    for tokens in token_lists:
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1

    def idf(term: str) -> float:
        return math.log(1 + (n - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))

    return idf

"""Hybrid retrieval: dense (Chroma, e5) and BM25 (Danish stems), fused, diverse by document.

The BM25 index lives in memory and is rebuilt from Chroma whenever the collection's
`last_refresh` changes, so a refresh by another process is picked up within seconds.
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
from bot.errors import IndexEmpty
from bot.store import KnowledgeStore, StoredChunk
from bot.text import Vocabulary, content_terms, expanded_terms

log = logging.getLogger(__name__)

_RRF_K = 20
ChunkTest = Callable[[str, dict[str, Any]], bool]  # a test on a chunk's text and metadata
_RECHECK_SECONDS = 5.0


@dataclass
class Query:
    """What to search for: weighted stems of the user's words, plus weaker ones from context."""

    text: str
    terms: dict[str, float]
    embed_text: str = ""
    unknown_names: list[str] = field(default_factory=list)
    inherited_weight: float = 0.4

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

    @property
    def doc_id(self) -> str:
        return self.metadata["doc_id"]


class HybridRetriever:
    """Dense + BM25 retrieval over the knowledge collection."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        dense_weight: float = 0.7,
        candidates: int = 20,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.candidates = candidates
        self._lock = threading.Lock()
        self._loaded_refresh: str | None = None
        self._checked_at = 0.0
        self.chunks: list[StoredChunk] = []
        self._bm25 = None
        self.vocabulary = Vocabulary(())
        self.idf: Callable[[str], float] = idf_from_tokens([])
        self._row: dict[str, int] = {}
        self._doc_rows: dict[str, list[int]] = {}
        self._position: dict[tuple[str, int], int] = {}
        self._terms: dict[str, frozenset[str]] = {}

    # -- index --------------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory BM25 index from the chunks in Chroma."""
        import bm25s

        refresh = self.store.info().get("last_refresh")
        chunks = self.store.all_chunks()
        if not chunks:
            raise IndexEmpty("The knowledge index is empty. Run `python ingest.py` first.")
        # Two generations of one document can coexist after a crashed ingest: keep the newest.
        chunks = _one_generation_per_doc(chunks)
        vocabulary = Vocabulary(
            (f"{c.metadata.get('title', '')} {c.text}", c.metadata.get("language", ""))
            for c in chunks
        )
        corpus = [self._lexical_tokens(c, vocabulary) for c in chunks]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        # Composer weights come from the chunks' own words (title and text), not the BM25 fields.
        idf = idf_from_tokens(
            [content_terms(f"{c.metadata.get('title', '')} {c.text}") for c in chunks]
        )
        doc_rows: dict[str, list[int]] = {}
        position: dict[tuple[str, int], int] = {}
        for i, c in enumerate(chunks):
            doc_rows.setdefault(c.metadata["doc_id"], []).append(i)
            position[(c.metadata["doc_id"], int(c.metadata.get("chunk", 0)))] = i
        with self._lock:
            self.chunks, self._bm25, self.vocabulary, self.idf = chunks, bm25, vocabulary, idf
            self._doc_rows, self._position = doc_rows, position
            self._row = {c.id: i for i, c in enumerate(chunks)}
            self._terms: dict[str, frozenset[str]] = {}
            self._loaded_refresh = refresh
            self._checked_at = time.monotonic()
        log.info("retriever: %d chunks loaded (refresh %s)", len(chunks), refresh)

    @staticmethod
    def _lexical_tokens(chunk: StoredChunk, vocabulary: Vocabulary) -> list[str]:
        meta = chunk.metadata
        head = f"{meta.get('title', '')} {meta.get('section', '')}"
        return expanded_terms(f"{head}\n{chunk.text}", vocabulary)

    def unit_terms(self, chunk_id: str, text: str) -> frozenset[str]:
        """Index terms of one chunk's own text (cached per chunk)."""
        cached = self._terms.get(chunk_id)
        if cached is None:
            cached = frozenset(expanded_terms(text, self.vocabulary))
            self._terms[chunk_id] = cached
        return cached

    def previous(self, passage: Passage) -> str | None:
        """The text of the unit before a passage in the same section, if there is one."""
        meta = passage.metadata
        with self._lock:
            chunks, position = self.chunks, self._position
        row = position.get((meta["doc_id"], int(meta.get("chunk", 0)) - 1))
        if row is None or chunks[row].metadata.get("section") != meta.get("section"):
            return None
        return chunks[row].text

    def ensure_fresh(self) -> None:
        """Reload when the collection was refreshed since the last load (checked every 5 s)."""
        if self._bm25 is None:
            self.load()
            return
        if time.monotonic() - self._checked_at < _RECHECK_SECONDS:
            return
        self._checked_at = time.monotonic()
        if self.store.info().get("last_refresh") != self._loaded_refresh:
            self.load()

    @property
    def refreshed_at(self) -> str | None:
        return self._loaded_refresh

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        query: Query,
        k: int = 8,
        per_doc: int = 2,
        expand_docs: int = 0,
        near: ChunkTest | None = None,
        anywhere: ChunkTest | None = None,
    ) -> list[Passage]:
        """The k best passages, at most per_doc from one document.

        Then the other units of the first expand_docs documents for which
        near(text, metadata) holds, and every chunk for which anywhere(text, metadata) holds:
        the answer may be a unit the capped search left out, such as a list's summary.
        """
        self.ensure_fresh()
        with self._lock:
            chunks, bm25, row = self.chunks, self._bm25, self._row
            doc_rows = self._doc_rows
        vector = self.embedder.embed_query(query.embed_text or query.text)
        dense = {c.id: sim for c, sim in self.store.query(vector, self.candidates) if c.id in row}
        lexical = _bm25_scores(bm25, query)
        fused = self._fuse(dense, lexical, chunks)
        passages: list[Passage] = []
        count: dict[str, int] = {}
        for chunk_id, score in fused:
            chunk = chunks[row[chunk_id]]
            doc_id = chunk.metadata["doc_id"]
            if count.get(doc_id, 0) >= per_doc:
                continue
            count[doc_id] = count.get(doc_id, 0) + 1
            passages.append(
                Passage(
                    id=chunk.id,
                    text=chunk.text,
                    metadata=chunk.metadata,
                    score=score,
                    dense=dense.get(chunk_id, 0.0),
                    lexical=float(lexical[row[chunk_id]]) if lexical is not None else 0.0,
                )
            )
            if len(passages) >= k:
                break
        if (expand_docs and near) or anywhere:
            passages += self._siblings(
                passages, (expand_docs, near, anywhere), vector, (dense, lexical), chunks, doc_rows
            )
        return passages

    def _siblings(
        self,
        passages: list[Passage],
        wanted: tuple[int, ChunkTest | None, ChunkTest | None],
        vector: np.ndarray,
        found: tuple[dict[str, float], np.ndarray | None],
        chunks: list[StoredChunk],
        doc_rows: dict[str, list[int]],
    ) -> list[Passage]:
        """Units of the top documents and wanted ones, with the fused score their ranks earn."""
        dense, lexical = found
        docs, near, anywhere = wanted
        top_docs = list(dict.fromkeys(p.doc_id for p in passages))[:docs] if near else []
        present = {p.id for p in passages}
        rows = [
            i
            for d in top_docs
            for i in doc_rows.get(d, [])
            if chunks[i].id not in present and near(chunks[i].text, chunks[i].metadata)
        ]
        if anywhere:
            taken = present | {chunks[i].id for i in rows}
            rows += [
                i
                for i, c in enumerate(chunks)
                if c.id not in taken and anywhere(c.text, c.metadata)
            ]
        if not rows:
            return []
        # Their similarity comes from Chroma, searching among just these ids. A chunk whose
        # vector is missing (a crashed ingest not yet repaired) gets none, and no dense rank.
        ids = [chunks[i].id for i in rows]
        found_sims = {c.id: sim for c, sim in self.store.query(vector, len(ids), ids=ids)}
        similarities = [found_sims.get(chunk_id) for chunk_id in ids]
        candidate_sims = np.sort(np.fromiter(dense.values(), dtype=np.float32))[::-1]
        siblings = []
        for i, sim in zip(rows, similarities, strict=True):
            # Rank among the dense candidates, and in the BM25 order when BM25 matched at all.
            score = 0.0
            if sim is not None:
                score = self.dense_weight / (_RRF_K + int(np.sum(candidate_sims > sim)) + 1)
            lex = float(lexical[i]) if lexical is not None else 0.0
            if lex > 0 and self.dense_weight < 1.0:
                rank = int(np.sum(lexical > lex))
                score += (1 - self.dense_weight) / (_RRF_K + rank + 1)
            siblings.append(
                Passage(chunks[i].id, chunks[i].text, chunks[i].metadata, score, sim or 0.0, lex)
            )
        return siblings

    def _fuse(
        self, dense: dict[str, float], lexical: np.ndarray | None, chunks: list[StoredChunk]
    ) -> list[tuple[str, float]]:
        """Weighted reciprocal-rank fusion; BM25 hits with score 0 are not evidence."""
        scores: dict[str, float] = {}
        for rank, (chunk_id, _) in enumerate(sorted(dense.items(), key=lambda kv: -kv[1])):
            scores[chunk_id] = self.dense_weight / (_RRF_K + rank + 1)
        if lexical is not None and self.dense_weight < 1.0:
            order = np.argsort(-lexical)[: self.candidates]
            for rank, i in enumerate(order):
                if lexical[i] <= 0:
                    break
                chunk_id = chunks[i].id
                scores[chunk_id] = scores.get(chunk_id, 0.0) + (1 - self.dense_weight) / (
                    _RRF_K + rank + 1
                )
        return sorted(scores.items(), key=lambda kv: -kv[1])


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

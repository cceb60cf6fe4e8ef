"""The vector cache: a rebuild or an edit embeds only text ingest has not embedded before."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bot.ingest import vector_cache
from bot.ingest.pipeline import run_ingest
from bot.retrieval import HybridRetriever, Query
from bot.store import KnowledgeStore
from tests.conftest import make_settings


class CountingEmbedder:
    """The real embedder, recording every text it is asked to embed."""

    def __init__(self, inner, model: str | None = None) -> None:
        self.inner = inner
        self.backend, self.dimension = inner.backend, inner.dimension
        self.model = model or inner.model
        self.texts: list[str] = []

    def embed_passages(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        self.texts.append(text)
        return self.inner.embed_query(text)


def top_texts(settings, embedder, question: str) -> list[str]:
    retriever = HybridRetriever(KnowledgeStore.open(settings), embedder)
    return [p.text for p in retriever.search(Query.from_text(question), k=3)]


def test_a_rebuild_embeds_nothing_it_embedded_before_and_answers_the_same(
    small_kb: Path, tmp_path: Path, embedder
) -> None:
    settings = make_settings(tmp_path / "data", small_kb)
    first = CountingEmbedder(embedder)
    report = run_ingest(settings, embedder=first)
    assert report.vectors_embedded == len(first.texts) > 0
    before = top_texts(settings, embedder, "Hvad er Rådets vision?")

    again = CountingEmbedder(embedder)
    rebuilt = run_ingest(settings, rebuild=True, embedder=again)

    assert again.texts == []
    assert rebuilt.chunks_written == report.chunks_written
    assert rebuilt.vectors_reused == rebuilt.chunks_written
    assert top_texts(settings, embedder, "Hvad er Rådets vision?") == before


def test_an_edited_file_embeds_only_its_new_sentence(small_kb: Path, tmp_path: Path, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    vision = small_kb / "vision.md"
    added = "Rådet vil i 2027 invitere til et åbent møde om visionen på Dokk1."
    vision.write_text(vision.read_text(encoding="utf-8") + f"\n\n{added}\n", encoding="utf-8")

    counting = CountingEmbedder(embedder)
    report = run_ingest(settings, embedder=counting)

    assert report.updated == ["vision.md"]
    assert len(counting.texts) == 1 and "Dokk1" in counting.texts[0]
    assert any("Dokk1" in t for t in top_texts(settings, embedder, "Hvornår er der åbent møde?"))


def test_another_model_never_reuses_the_vectors(small_kb: Path, tmp_path: Path, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    other = CountingEmbedder(embedder, model="another-model")
    cached = vector_cache.open_for(settings.data_dir, other)
    assert cached is not None
    texts = [c.text for c in KnowledgeStore.open(settings).all_chunks()][:5]
    cached.embed_passages(texts)
    assert other.texts == texts and cached.reused == 0
    cached.cache.close()


def test_a_broken_cache_file_costs_time_never_the_build(
    small_kb: Path, tmp_path: Path, embedder, caplog
) -> None:
    settings = make_settings(tmp_path / "data", small_kb)
    settings.data_dir.mkdir(parents=True)
    path = settings.data_dir / vector_cache.FILE
    path.write_bytes(b"\x00garbage, not a database" * 100)

    with caplog.at_level(logging.WARNING):
        report = run_ingest(settings, embedder=embedder)

    assert report.exit_code == 0 and report.chunks_written > 0
    assert "vector cache" in caplog.text
    assert path.with_suffix(".broken").exists()
    again = CountingEmbedder(embedder)
    run_ingest(settings, rebuild=True, embedder=again)
    assert again.texts == []  # the run that met the broken file wrote a fresh cache


def test_rows_unused_for_long_or_beyond_the_cap_are_dropped(tmp_path: Path, monkeypatch):
    cache = vector_cache.VectorCache(tmp_path / vector_cache.FILE)
    day = [20_000]
    monkeypatch.setattr(vector_cache, "_today", lambda: day[0])
    cache.put({"old": np.ones(4, dtype=np.float32)})
    day[0] += 100
    cache.put({f"new{i}": np.full(4, i, dtype=np.float32) for i in range(5)})
    assert cache.prune(max_age_days=90, max_rows=3) == 3  # "old" by age, two by the cap
    assert cache.rows() == 3
    assert cache.get(["old"], 4) == {}
    # A vector of another dimension is never handed out.
    assert cache.get(["new4"], 8) == {}
    cache.close()

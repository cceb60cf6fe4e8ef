"""The answerer's query cache: a question is embedded once per answer, and only a few are kept."""

from __future__ import annotations

import numpy as np

from bot.embedding import CachedQueries


class Counting:
    backend, model, dimension = "test", "counting", 2

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed_query(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return np.array([len(text), 1.0], dtype=np.float32)

    def embed_passages(self, texts):
        return np.vstack([self.embed_query(t) for t in texts])


def test_a_question_asked_twice_is_embedded_once():
    inner = Counting()
    cached = CachedQueries(inner, size=2)
    first = cached.embed_query("hvem er formand?")
    again = cached.embed_query("hvem er formand?")
    assert inner.calls == ["hvem er formand?"] and np.array_equal(first, again)


def test_only_the_last_few_questions_are_kept():
    inner = Counting()
    cached = CachedQueries(inner, size=2)
    for text in ("a", "b", "c", "a"):
        cached.embed_query(text)
    assert inner.calls == ["a", "b", "c", "a"]
    assert len(cached._vectors) == 2


def test_passages_are_never_cached_and_the_model_is_reported():
    inner = Counting()
    cached = CachedQueries(inner)
    cached.embed_passages(["x", "x"])
    assert inner.calls == ["x", "x"]
    assert (cached.backend, cached.model, cached.dimension) == ("test", "counting", 2)

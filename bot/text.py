"""Tokens, stems and stop words shared by BM25, sentence scoring and follow-up detection.

Danish Snowball stemming for every token (the knowledge base is mostly Danish and English
words mostly survive a Danish stemmer unchanged); Danish and English stop words. Query terms
that are not in the knowledge base's vocabulary are corrected to the nearest known term
(edit distance 1, or 2 for long words), so "jepe kiel kristensen" finds "Jeppe Kiel Christensen".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_DANISH, STOPWORDS_EN

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)
STOPWORDS = frozenset(STOPWORDS_DANISH) | frozenset(STOPWORDS_EN) | {
    "mon", "hvordan", "hvilke", "hvilken", "hvilket", "også", "sådan", "mange", "meget",
    "does", "did", "can", "could", "would", "should", "many", "much", "what", "which", "who",
    "whom", "whose", "when", "where", "why", "how", "tell", "please", "venligst", "fortæl",
}
_stemmer = Stemmer.Stemmer("danish")


def words(text: str) -> list[str]:
    """Lower-cased word and number tokens."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Danish Snowball stem of one lower-cased word (numbers unchanged)."""
    return word if word[0].isdigit() else _stemmer.stemWord(word)


def content_terms(text: str) -> list[str]:
    """Stems of the words that carry meaning (stop words and 1-letter words dropped)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (returning limit + 1) once it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


class Vocabulary:
    """The stems that occur in the knowledge base, for spelling correction of queries."""

    def __init__(self, stems: Iterable[str]) -> None:
        self._stems = frozenset(stems)
        self._by_initial: dict[str, list[str]] = {}
        for s in self._stems:
            if len(s) >= 3 and not s[0].isdigit():
                self._by_initial.setdefault(s[0], []).append(s)

    def __contains__(self, term: str) -> bool:
        return term in self._stems

    def correct(self, term: str) -> str | None:
        """The known stem closest to an unknown one, or None when nothing is close."""
        if term in self._stems:
            return term
        if len(term) < 4 or term[0].isdigit():
            return None
        limit = 1 if len(term) < 7 else 2
        # Misspellings rarely change the first letter, but k/c and a few others swap.
        initials = {term[0], *_SWAPS.get(term[0], ())}
        best, best_distance = None, limit + 1
        for initial in initials:
            for candidate in self._by_initial.get(initial, ()):
                distance = edit_distance(term, candidate, limit)
                if distance < best_distance or (
                    distance == best_distance and best is not None and candidate < best
                ):
                    best, best_distance = candidate, distance
        return best


_SWAPS = {"k": ("c", "q"), "c": ("k", "s"), "q": ("k",), "s": ("c", "z"), "z": ("s",),
          "v": ("w",), "w": ("v",), "j": ("g", "i"), "g": ("j",), "i": ("j", "y"), "y": ("i",)}

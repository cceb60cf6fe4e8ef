"""Tokens, stems and stop words shared by BM25, sentence scoring and follow-up detection.

Danish Snowball stemming for every token (the knowledge base is mostly Danish and English
words mostly survive a Danish stemmer unchanged); Danish and English stop words. Query terms
that are not in the knowledge base's vocabulary are corrected to the nearest known term
(edit distance 1, or 2 for long words), so "jens hanzen" finds "Jens Hansen". The word lists
live in `bot.lexicon`. Compound splitting, a strong-verb table and a verb weight were removed:
none of them improved the question bank's out-of-fold figures (README, ablation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

from bot.lexicon import stopwords

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)
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
    return [stem(w) for w in words(text) if w not in stopwords() and (len(w) > 1 or w.isdigit())]


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
    """The words and stems of the knowledge base, for spelling correction and decompounding."""

    def __init__(self, texts: Iterable[str | tuple[str, str]] = ()) -> None:
        """Texts, or (text, language) pairs; with languages, corrections stay in one language."""
        surface: set[str] = set()
        by_language: dict[str, set[str]] = {}
        for item in texts:
            text, language = item if isinstance(item, tuple) else (item, "")
            found = {w for w in words(text) if not w[0].isdigit()}
            surface.update(found)
            if language:
                by_language.setdefault(language, set()).update(found)
        self._words = frozenset(surface)
        self._language_words = {lang: frozenset(ws) for lang, ws in by_language.items()}
        self._stems = frozenset(stem(w) for w in surface)
        self._by_initial: dict[str, list[str]] = {}
        for w in self._words:
            if len(w) >= 4:
                self._by_initial.setdefault(w[0], []).append(w)

    def __contains__(self, stem_: str) -> bool:
        return stem_ in self._stems

    def correct(self, word: str, min_length: int = 5, language: str | None = None) -> str | None:
        """The known word closest to an unknown one (1 edit, 2 for long words), or None.

        With a language, only words from that language's texts are candidates: an English
        "help" must not become the Danish "hele".
        """
        if len(word) < min_length or word[0].isdigit():
            return None
        allowed = self._language_words.get(language) if language else None
        if allowed is not None and len(allowed) < _MIN_DICTIONARY:
            # A few hundred English words cannot tell a typo from a word the material lacks
            # ("started" is not a misspelt "stated").
            return None
        limit = 1 if len(word) < 10 else 2
        # Misspellings rarely change the first letter (a sound-alike table for k/c, v/w … was
        # removed: no out-of-fold gain).
        best, best_distance = None, limit + 1
        for candidate in self._by_initial.get(word[0], ()):
            if allowed is not None and candidate not in allowed:
                continue
            distance = edit_distance(word, candidate, limit)
            if distance < best_distance or (
                distance == best_distance and best and candidate < best
            ):
                best, best_distance = candidate, distance
        return best

    def query_terms(self, text: str, language: str | None = None) -> list[tuple[str, float]]:
        """Content stems of a query with weights.

        Known words weigh 1.0; corrected words 0.8. A multi-word name ("Jens Peter Hansen") is
        one concept: its words share one weight, so a name does not outweigh the rest of the
        question just by having three words.
        """
        terms: list[tuple[str, float]] = []
        for group in _name_groups(text)[0]:
            group_terms: list[tuple[str, float]] = []
            for word in group:
                group_terms.extend(self._word_terms(word, language))
            share = 1.0 / len(group_terms) if len(group) > 1 and group_terms else 1.0
            terms.extend((term, weight * share) for term, weight in group_terms)
        return terms

    def corrected(self, text: str, language: str | None = None) -> str:
        """The text with misspelled words replaced by the closest known word (for embedding)."""

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lower = word.lower()
            if lower in self._words or lower in stopwords() or not self._words:
                return word
            # Short words are corrected only here, for the embedder, where a wrong guess is cheap.
            known = self.correct(lower, min_length=4, language=language)
            return known if known else word

        return _RAW_TOKEN.sub(fix, text)

    def knows(self, word: str) -> bool:
        """Whether a word is a stop word or a word of the knowledge base, exactly as written
        (stems and spelling correction would take "Mette" for "met")."""
        lowered = word.lower()
        return lowered in stopwords() or len(lowered) <= 2 or lowered in self._words

    def unknown_names(self, text: str, language: str | None = None) -> list[str]:
        """Capitalised words the knowledge base has never seen, even after correction.

        "Odense" in a question about a council means another council than ours.
        """
        _, names = _name_groups(text)
        return [
            n
            for n in names
            if not n[0].isdigit()
            and len(n) > 2
            and stem(n) not in self._stems
            and self.correct(n, language=language) is None
        ]

    def _word_terms(self, word: str, language: str | None = None) -> list[tuple[str, float]]:
        if word in stopwords() or (len(word) < 2 and not word.isdigit()):
            return []
        stemmed = stem(word)
        if stemmed in self._stems or word[0].isdigit() or not self._stems:
            return [(stemmed, 1.0)]
        fixed = self.correct(word, language=language)
        # A word the knowledge base has never seen weighs like a known one: it is the best sign
        # that the question is about something the material lacks (measured: 0.5 hurt refusals).
        return [(stem(fixed), 0.8) if fixed else (stemmed, _UNKNOWN_WEIGHT)]


# A list item's marker ("- ", "• ", "3. "), as Markdown and the chunker write it.
LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# The longest a name is taken to be, in words (a row name, a list item's label).
MAX_NAME_WORDS = 8

_RAW_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)


def _name_groups(text: str) -> tuple[list[list[str]], list[str]]:
    """Lower-cased words with runs of capitalised words (names) grouped, and those names."""
    groups: list[list[str]] = []
    names: list[str] = []
    run: list[str] = []
    for i, match in enumerate(_RAW_TOKEN.finditer(text)):
        token = match.group(0)
        capitalised = token[0].isupper() and i > 0 and token.lower() not in stopwords()
        if capitalised:
            run.append(token.lower())
            names.append(token.lower())
            continue
        if run:
            groups.append(run)
            run = []
        groups.append([token.lower()])
    if run:
        groups.append(run)
    return groups, names


_UNKNOWN_WEIGHT = 1.0
_MIN_DICTIONARY = 1000  # distinct words a language needs before its unknown words count as typos

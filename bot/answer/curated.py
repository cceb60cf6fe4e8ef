"""The curated step: answer from a reviewed answer when the question is one it answers.

Runs before retrieval. The question (its own words, never a previous turn's) is embedded and
compared with every question variant of every entry that may be served now. The best entry's
match features go through a fitted logistic model (`make train`, `bot.train_curated`); the
entry answers when its probability reaches the threshold chosen for a precision of at least
0.98 on labelled pairs. Below it, the normal pipeline answers.

A question that is, word for word, one of an entry's variants is that entry's (staff said so);
one that is word for word under an entry's `not:` never gets that entry. This is how staff fix
a question the matcher gets wrong, without a developer: add it to the right list.

An entry may be served only while it is fresh: not expired today, and every source in the
index exactly in the version it had when ingest last checked the entry's review
(`bot.ingest.curated`). Anything else falls through to the normal pipeline.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from bot.answer.model import Logistic
from bot.curated import question_key
from bot.errors import ConfigError
from bot.text import Vocabulary, content_terms

log = logging.getLogger(__name__)

PARAMS_FILE = Path(__file__).with_name("curated_params.json")

# The match features of a question against one candidate entry (see `match_features`).
CURATED_FEATURES: tuple[str, ...] = (
    "similarity",  # cosine with the entry's closest question variant
    "similarity_language",  # the same, among variants in the question's language
    "top_variants",  # mean cosine with the entry's three closest variants (agreement)
    "margin",  # similarity minus the best other entry's
    "answer_similarity",  # the question (as a query) against the answer text (as a passage)
    "answer_margin",  # answer similarity minus the best other entry's
    "sentence_similarity",  # the question against the answer's closest sentence or list item
    "sentence_margin",  # ... minus the best other entry's
    "term_recall",  # idf-weighted share of the question's terms found in the variants
    "answer_recall",  # ... found in the variants or the answer text
    "unseen_rarest",  # idf of the rarest question term that the entry never mentions
    "unseen_numbers",  # numbers (years, amounts) in the question that the entry never mentions
    "rank",  # the entry's rank by similarity among all entries
    "terms",  # log(1 + number of the question's content terms)
    "english",  # the question is in English
    "negative_margin",  # similarity minus the closest question the entry says it does not answer
    "any_negative_margin",  # ... minus the closest such question of any entry
    "vote",  # share of the ten questions (variants and `not:`) closest to it that are its variants
)
CANDIDATES = 3  # entries scored per question: the closest by variants, plus the closest answer
_VOTERS = 10
_NUMBER = re.compile(r"\d+")
IDF = Callable[[str], float]


@dataclass(frozen=True)
class CuratedParams:
    """The fitted matcher, its threshold, and the lower threshold for suggesting an entry."""

    model: Logistic
    threshold: float
    report: dict = field(default_factory=dict, compare=False)
    # Below `threshold` but at or above this, the normal answer offers the entry as a button
    # ("Se det godkendte svar: …"): a wrong suggestion costs a glance, a wrong answer much more.
    suggest: float = 1.0

    def to_dict(self) -> dict:
        return {
            "model": self.model.to_dict(),
            "threshold": round(self.threshold, 6),
            "suggest_threshold": round(self.suggest, 6),
            "report": self.report,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path | None = None) -> CuratedParams:
        path = path or PARAMS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                Logistic.from_dict(data["model"], CURATED_FEATURES),
                float(data["threshold"]),
                data.get("report", {}),
                float(data.get("suggest_threshold", 1.0)),
            )
        except FileNotFoundError as exc:
            raise ConfigError(f"No curated-answer parameters at {path}; run `make train`.") from exc
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"The curated-answer parameters at {path} are invalid: {exc}"
            ) from exc


@dataclass(frozen=True)
class Entry:
    """A curated entry as the bot serves it (from the curated collection's payload)."""

    id: str
    questions: dict[str, list[str]]
    sources: list[str]
    answers: dict[str, str]
    reviewed: str
    expires: str
    reviewer: str
    indexed: dict[str, str]  # source -> document hash it was checked against; {} = review due
    terms: frozenset[str]  # content terms of the variants
    all_terms: frozenset[str]  # ... and of the answers
    numbers: frozenset[str]

    def fresh(self, index_hashes: dict[str, str], today: date) -> bool:
        """Whether it may be served: checked, unexpired, sources as they were checked."""
        if not self.indexed or date.fromisoformat(self.expires) < today:
            return False
        return all(index_hashes.get(s) == self.indexed.get(s) for s in self.sources)


@dataclass(frozen=True)
class Match:
    """A candidate entry for a question, with its match features."""

    entry: Entry
    variant: str  # the closest variant, in the question's language when there is one
    similarity: float
    features: np.ndarray
    declined: bool = False  # that variant is one the answer declines: the reply is a refusal


class CuratedIndex:
    """The question variants and answers of the servable entries, in memory, matched with numpy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loaded_for: object = None
        self.entries: list[Entry] = []
        self._questions = _Rows()
        self._answers = _Rows()
        self._sentences = _Rows()
        self._negatives = _Rows()
        # question key -> (entry, variant, declined)
        self._verbatim: dict[str, tuple[int, str, bool]] = {}
        self._refused: dict[str, set[int]] = {}

    def load(self, rows, index_hashes: dict[str, str], today: date, key: object) -> None:
        """Keep the entries that are fresh now; `rows` = (texts, vectors, metadatas)."""
        texts, vectors, metas = rows
        entries: dict[str, Entry | None] = {}
        for meta in metas:
            if "payload" in meta and meta.get("entry") not in entries:
                entry = _entry(meta)
                if entry is not None:
                    entries[entry.id] = entry if entry.fresh(index_hashes, today) else None
        fresh = [e for e in entries.values() if e is not None]
        position = {e.id: n for n, e in enumerate(fresh)}
        questions, answers, sentences, negatives = _Rows(), _Rows(), _Rows(), _Rows()
        kinds = {"answer": answers, "sentence": sentences, "negative": negatives}
        for i, meta in enumerate(metas):
            if meta.get("entry") not in position:
                continue
            kind = meta.get("kind", "")
            rows_for = kinds.get(kind, questions)
            rows_for.add(
                vectors[i],
                position[meta["entry"]],
                meta.get("language", "da"),
                texts[i],
                kind == "declined",
            )
        with self._lock:
            self.entries = fresh
            self._questions, self._answers = questions.done(), answers.done()
            self._sentences, self._negatives = sentences.done(), negatives.done()
            rows = list(
                zip(
                    questions.text,
                    questions.entries,
                    questions.declined,
                    questions.language,
                    strict=True,
                )
            )
            # A keyword variant ("rådets mail") is shown as the first variant of its entry, list
            # and language that is written as a question.
            first_question: dict[tuple[int, bool, str], str] = {}
            for t, e, d, lang in rows:
                if _is_question(t):
                    first_question.setdefault((e, d, lang), t)
            self._verbatim = {
                question_key(t): (
                    e,
                    t if _is_question(t) else first_question.get((e, d, lang), t),
                    d,
                )
                for t, e, d, lang in rows
            }
            self._refused = {}
            for text, e in zip(negatives.text, negatives.entries, strict=True):
                self._refused.setdefault(question_key(text), set()).add(e)
            self.loaded_for = key
        log.info(
            "curated: %d entries served, %d waiting for review",
            len(fresh),
            len(entries) - len(fresh),
        )

    def verbatim(self, text: str) -> tuple[Match | None, frozenset[str]]:
        """The entry one of whose variants the question is word for word (or None), and the
        ids of the entries that list it word for word under `not:`."""
        key = question_key(text)
        with self._lock:
            entries, found = self.entries, self._verbatim.get(key)
            refused = self._refused.get(key, set())
        match = None
        if found is not None:
            match = Match(entries[found[0]], found[1], 1.0, np.zeros(0), declined=found[2])
        return match, frozenset(entries[e].id for e in refused)

    def candidates(
        self,
        vector: np.ndarray,
        text: str,
        language: str,
        idf: IDF,
        vocabulary: Vocabulary | None = None,
    ) -> list[Match]:
        """The closest entries (by question variants, and the closest answer) with features."""
        with self._lock:
            entries, questions, answers = self.entries, self._questions, self._answers
            sentences, negatives = self._sentences, self._negatives
        if not entries or not len(questions.matrix):
            return []
        unit = vector / (np.linalg.norm(vector) or 1.0)
        sims = questions.matrix @ unit
        by_entry = _per_entry(sims, questions.entry, len(entries))
        answer_sims = answers.matrix @ unit if len(answers.matrix) else np.zeros(0)
        by_answer = _per_entry(answer_sims, answers.entry, len(entries))
        sentence_sims = sentences.matrix @ unit if len(sentences.matrix) else np.zeros(0)
        by_sentence = _per_entry(sentence_sims, sentences.entry, len(entries))
        negative_sims = negatives.matrix @ unit if len(negatives.matrix) else np.zeros(0)
        # An entry without `not:` questions has none to be near: its margin is its similarity.
        by_negative = np.maximum(_per_entry(negative_sims, negatives.entry, len(entries)), 0.0)
        any_negative = float(negative_sims.max()) if len(negative_sims) else 0.0
        pooled = np.concatenate([sims, negative_sims])
        owner = np.concatenate([questions.entry, np.full(len(negative_sims), -1)])
        nearest = owner[np.argsort(-pooled, kind="stable")[:_VOTERS]]
        order = list(np.argsort(-by_entry, kind="stable"))
        picked = order[:CANDIDATES]
        closest_answer = int(np.argmax(by_answer))
        if closest_answer not in picked:
            picked.append(closest_answer)
        terms = _weighted_terms(text, language, idf, vocabulary)
        numbers = set(_NUMBER.findall(text))
        out = []
        for e in picked:
            e = int(e)
            mine = np.flatnonzero(questions.entry == e)
            own = np.sort(sims[mine])[::-1]
            same = [i for i in mine if questions.language[i] == language]
            best_row = max(same or list(mine), key=lambda i: sims[i])
            # "Svar på: …" shows the closest variant written as a question, not a keyword one.
            shown = [
                i
                for i in (same or list(mine))
                if questions.declined[i] == questions.declined[best_row]
                and _is_question(questions.text[i])
            ]
            shown_row = max(shown, key=lambda i: sims[i]) if shown else best_row
            others = np.delete(by_entry, e)
            other_answers = np.delete(by_answer, e)
            other_sentences = np.delete(by_sentence, e)
            entry = entries[e]
            values = {
                "similarity": float(own[0]),
                "similarity_language": max((float(sims[i]) for i in same), default=float(own[0])),
                "top_variants": float(own[:3].mean()),
                # With a single entry there is nothing to be ahead of: no margin, not a large one.
                "margin": float(own[0] - others.max()) if len(others) else 0.0,
                "answer_similarity": float(by_answer[e]),
                "answer_margin": float(by_answer[e] - other_answers.max()) if len(others) else 0.0,
                "sentence_similarity": float(by_sentence[e]),
                "sentence_margin": (
                    float(by_sentence[e] - other_sentences.max()) if len(others) else 0.0
                ),
                "term_recall": _recall(terms, entry.terms),
                "answer_recall": _recall(terms, entry.all_terms),
                "unseen_rarest": max(
                    (w for t, w in terms.items() if t not in entry.all_terms), default=0.0
                ),
                "unseen_numbers": float(len(numbers - entry.numbers)),
                "rank": float(order.index(e)),
                "terms": math.log1p(len(terms)),
                "english": float(language == "en"),
                "negative_margin": float(own[0] - by_negative[e]),
                "any_negative_margin": float(own[0] - any_negative),
                "vote": float(np.mean(nearest == e)),
            }
            features = np.array([values[n] for n in CURATED_FEATURES], dtype=np.float64)
            out.append(
                Match(
                    entry,
                    questions.text[shown_row],
                    float(own[0]),
                    features,
                    declined=questions.declined[best_row],
                )
            )
        return out


class _Rows:
    """Vectors with the entry, language and text of each row."""

    def __init__(self) -> None:
        self.vectors: list[np.ndarray] = []
        self.entries: list[int] = []
        self.language: list[str] = []
        self.text: list[str] = []
        self.declined: list[bool] = []
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.entry = np.zeros(0, dtype=np.int64)

    def add(
        self, vector: np.ndarray, entry: int, language: str, text: str, declined: bool = False
    ) -> None:
        self.vectors.append(vector)
        self.entries.append(entry)
        self.language.append(language)
        self.text.append(text)
        self.declined.append(declined)

    def done(self) -> _Rows:
        if self.vectors:
            matrix = np.vstack(self.vectors).astype(np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self.matrix = matrix / np.where(norms == 0, 1, norms)
        self.entry = np.array(self.entries, dtype=np.int64)
        self.vectors = []
        return self


def _is_question(text: str) -> bool:
    """Whether a variant is written as a question (shown in "Svar på: …"), not as keywords."""
    return text.rstrip().endswith("?")


def _per_entry(sims: np.ndarray, entry: np.ndarray, n: int) -> np.ndarray:
    best = np.full(n, -1.0)
    if len(sims):
        np.maximum.at(best, entry, sims)
    return best


def _weighted_terms(
    text: str, language: str, idf: IDF, vocabulary: Vocabulary | None
) -> dict[str, float]:
    """The question's stems (spelling corrected against the knowledge base) with their idf."""
    if vocabulary is None:
        stems = set(content_terms(text))
    else:
        stems = {t for t, _ in vocabulary.query_terms(text, language)}
    return {t: idf(t) for t in stems}


def _recall(terms: dict[str, float], found: frozenset[str]) -> float:
    total = sum(terms.values())
    return sum(w for t, w in terms.items() if t in found) / total if total else 0.0


def _entry(meta: dict) -> Entry | None:
    try:
        data = json.loads(meta["payload"])
        indexed = json.loads(meta.get("indexed") or "{}")
    except (KeyError, json.JSONDecodeError):
        log.warning("curated: a stored entry has no readable payload; run `python ingest.py`")
        return None
    asked = [*data["questions"].values(), *data.get("declined", {}).values()]
    variants = " ".join(q for qs in asked for q in qs)
    answers = " ".join(data["answers"].values())
    return Entry(
        id=data["id"],
        questions=data["questions"],
        sources=data["sources"],
        answers=data["answers"],
        reviewed=data["reviewed"],
        expires=data["expires"],
        reviewer=data.get("reviewer", ""),
        indexed=indexed,
        terms=frozenset(content_terms(variants)),
        all_terms=frozenset(content_terms(f"{variants} {answers}")),
        numbers=frozenset(_NUMBER.findall(f"{variants} {answers}")),
    )

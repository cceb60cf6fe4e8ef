"""The named features of the fitted parts: one row per candidate unit, one row per answer.

Training (`bot.train`) and answering use these functions, so a model always sees the features
it was fitted on. Every feature is general: similarities, ranks, term coverage, form and
length, never a word of the Council's material.

Unit features (the ranker: is this unit the answer?):
    dense            cosine similarity of the unit to the question
    dense_gap        best similarity of any unit minus this one
    window_dense     best similarity of the unit's neighbours in its document
    dense_rank       log(1 + rank) among all units by similarity
    lexical          BM25 score relative to the best BM25 score (0 without a match)
    lexical_rank     log(1 + rank) by BM25 (the number of units without a match)
    fused            fused retrieval score (convex combination or RRF, see the parameters)
    coverage         IDF-weighted share of the question's terms in the unit
    context          share found only around the unit (title, heading, neighbours)
    heading          share found in the document title and the unit's heading
    form_list, form_item, form_summary   the unit's form (a sentence is the baseline)
    length           log(1 + words)
    position         log(1 + the unit's place in its document)
    doc_rank         log(1 + rank of the unit's document by its best unit)
    absence          the unit says the material lacks something ("vi har ikke fundet …")
    centrality       similarity of the unit to the centre of the collection (generic sentences)
    doc_dense        best similarity in the unit's document, minus the best overall
    dense_z          the unit's similarity standardised within the candidate pool
    english          the question is in English; en_* repeat some features for English only
    unit_english     the unit is in English (the English pages summarise; details are Danish)

Item features (which items of a whole list to quote: is this item the answer?):
    dense, dense_gap      similarity of the item (with the list's lead-in) and its lag behind
                          the list's best item
    coverage, coverage_gap   IDF-weighted share of the question's terms in the item, and its
                          lag behind the list's best item
    position, length      log(1 + the item's place in the list), log(1 + words)

Answer features (the gate: is the composed answer right?):
    top_prob, margin      the ranker's best unit probability (logit) and its lead on the next
    top_dense, dense_margin   best similarity of any unit and its lead over the tenth
    top_lexical           log(1 + best BM25 score)
    coverage, coverage_all   coverage of the first quoted unit, and of all quoted units
    documents             distinct documents among the five most similar units
    question_words        log(1 + words in the question)
    unknown_names         capitalised words the material has never seen
    english               the question is in English
    absence               the first quoted unit says the material lacks something
    unseen                weighted share of the question's terms found nowhere in the material
    uncovered             the highest IDF among question terms the quoted units and their
                          context lack, relative to the highest IDF of any question term
    numbers_missing       numbers in the question (years, amounts) that no quoted unit has
    intent                logit of P(the material answers it) from the question's embedding
                          alone (`Params.intent`, a logistic regression on the vector and on
                          products of its leading principal components): how
                          answerable questions are asked differs from personal cases, other
                          municipalities, future events and tasks that are not questions
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Container, Sequence

import numpy as np

from bot.retrieval import Passage, Query
from bot.text import content_terms

# Features whose worth differs for an English question over mostly Danish units: the model gets
# them a second time, zero for Danish questions (a language interaction a linear model needs).
_BY_LANGUAGE = (
    "dense",
    "dense_gap",
    "dense_rank",
    "lexical",
    "lexical_rank",
    "coverage",
    "context",
    "heading",
    "centrality",
    "unit_english",
)

UNIT_FEATURES = (
    "dense",
    "dense_gap",
    "window_dense",
    "dense_rank",
    "lexical",
    "lexical_rank",
    "fused",
    "coverage",
    "context",
    "heading",
    "form_list",
    "form_item",
    "form_summary",
    "length",
    "position",
    "doc_rank",
    "absence",
    "centrality",
    "doc_dense",
    "dense_z",
    "english",
    "unit_english",
    *(f"en_{name}" for name in _BY_LANGUAGE),
)

ANSWER_FEATURES = (
    "top_prob",
    "margin",
    "top_dense",
    "dense_margin",
    "top_lexical",
    "coverage",
    "coverage_all",
    "documents",
    "question_words",
    "unknown_names",
    "english",
    "absence",
    "unseen",
    "uncovered",
    "numbers_missing",
    "intent",
)

ITEM_FEATURES = ("dense", "dense_gap", "coverage", "coverage_gap", "position", "length")

_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def unit_rows(
    units: Sequence,
    query: Query,
    idf: Callable[[str], float],
    absent: Callable[[object], bool],
    language: str = "da",
) -> np.ndarray:
    """One row of UNIT_FEATURES per unit (units carry `passage`, `terms`, `context_terms`).

    Also sets each unit's `coverage`, which the gate reuses.
    """
    weights = {t: w * idf(t) for t, w in query.weights().items()}
    total = sum(weights.values()) or 1.0
    rows = np.zeros((len(units), len(UNIT_FEATURES)), dtype=np.float64)
    sims = np.array([u.passage.dense for u in units]) if units else np.zeros(1)
    pool_mean, pool_std = float(sims.mean()), float(sims.std()) or 1.0
    for r, unit in enumerate(units):
        passage: Passage = unit.passage
        meta, signals = passage.metadata, passage.signals
        own = sum(w for t, w in weights.items() if t in unit.terms)
        around = sum(
            w for t, w in weights.items() if t in unit.context_terms and t not in unit.terms
        )
        heading_terms = unit.heading_terms
        heading = sum(w for t, w in weights.items() if t in heading_terms)
        unit.coverage = own / total
        form = meta.get("form", "sentence")
        rows[r] = (
            passage.dense,
            signals.get("top_dense", passage.dense) - passage.dense,
            signals.get("window_dense", passage.dense),
            math.log1p(signals.get("dense_rank", 0.0)),
            signals.get("lexical_norm", 0.0),
            math.log1p(signals.get("lexical_rank", 0.0)),
            passage.score,
            own / total,
            around / total,
            heading / total,
            float(form == "list"),
            float(form == "item"),
            float(form == "summary"),
            math.log1p(len(passage.text.split())),
            math.log1p(float(meta.get("chunk", 0))),
            math.log1p(signals.get("doc_rank", 0.0)),
            float(absent(unit)),
            signals.get("centrality", 0.0),
            signals.get("doc_dense", passage.dense) - signals.get("top_dense", passage.dense),
            (passage.dense - pool_mean) / pool_std,
            float(language == "en"),
            float(meta.get("language") == "en"),
            *([0.0] * len(_BY_LANGUAGE)),
        )
    if language == "en":
        base = [UNIT_FEATURES.index(name) for name in _BY_LANGUAGE]
        start = UNIT_FEATURES.index(f"en_{_BY_LANGUAGE[0]}")
        rows[:, start : start + len(base)] = rows[:, base]
    return rows


def item_rows(
    parts: Sequence[tuple[str, float]], query: Query, idf: Callable[[str], float]
) -> np.ndarray:
    """One row of ITEM_FEATURES per item of a whole list (text, similarity to the question)."""
    if not parts:
        return np.zeros((0, len(ITEM_FEATURES)))
    weights = {t: w * idf(t) for t, w in query.weights().items()}
    total = sum(weights.values()) or 1.0
    sims = np.array([sim for _, sim in parts])
    terms = [frozenset(content_terms(text)) for text, _ in parts]
    coverage = np.array([sum(w for t, w in weights.items() if t in own) for own in terms]) / total
    return np.column_stack(
        [
            sims,
            sims.max() - sims,
            coverage,
            coverage.max() - coverage,
            np.log1p(np.arange(len(parts))),
            np.log1p([len(text.split()) for text, _ in parts]),
        ]
    ).astype(np.float64)


def answer_row(
    probabilities: np.ndarray,
    chosen: Sequence,
    passages: Sequence[Passage],
    query: Query,
    idf: Callable[[str], float],
    language: str,
    absent: Callable[[object], bool],
    known: Container[str] = frozenset(),
    intent: float = 0.5,
) -> np.ndarray:
    """One row of ANSWER_FEATURES for a composed answer (chosen units, best first)."""
    ordered = np.sort(probabilities)[::-1] if len(probabilities) else np.zeros(1)
    top = float(ordered[0])
    second = float(ordered[1]) if len(ordered) > 1 else 0.0
    sims = sorted((p.dense for p in passages), reverse=True) or [0.0]
    tenth = sims[min(9, len(sims) - 1)]
    top_lexical = max((p.signals.get("top_lexical", p.lexical) for p in passages), default=0.0)
    by_similarity = sorted(passages, key=lambda p: -p.dense)[:5]
    weights = {t: w * idf(t) for t, w in query.weights().items()}
    total = sum(weights.values()) or 1.0
    quoted = frozenset().union(*(u.terms for u in chosen)) if chosen else frozenset()
    coverage_all = sum(w for t, w in weights.items() if t in quoted) / total
    around = quoted.union(*(u.context_terms for u in chosen)) if chosen else frozenset()
    idfs = {t: idf(t) for t in weights}
    top_idf = max(idfs.values(), default=0.0) or 1.0
    uncovered = max((idfs[t] for t in weights if t not in around), default=0.0) / top_idf
    unseen = sum(w for t, w in weights.items() if t not in known) / total
    quoted_text = " ".join(u.passage.text for u in chosen)
    numbers_missing = len(set(_NUMBERS.findall(query.text)) - set(_NUMBERS.findall(quoted_text)))
    return np.array(
        (
            _logit(top),
            _logit(top) - _logit(second),
            sims[0],
            sims[0] - tenth,
            math.log1p(top_lexical),
            chosen[0].coverage if chosen else 0.0,
            coverage_all,
            float(len({p.doc_id for p in by_similarity})),
            math.log1p(len(query.text.split())),
            float(len(query.unknown_names)),
            float(language == "en"),
            float(bool(chosen) and absent(chosen[0])),
            unseen,
            uncovered,
            float(numbers_missing),
            _logit(intent),
        ),
        dtype=np.float64,
    )


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))

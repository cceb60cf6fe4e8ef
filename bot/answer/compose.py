"""Extractive composer: quote the best sentences of the retrieved passages, with `[n]` marks.

Units are sentences; a list (with the line that introduces it) or a table row stays whole.
Each unit is scored by how much of the question's weighted terms it covers (IDF-weighted,
with its section heading as context) and by the rank of its passage. The best 1-4
non-redundant units are kept. To show disagreement or change over time, the best unit of a
second, differently dated document is added when it is nearly as good, and the best unit of
the type the question asks for (`bot.answer.intent`: a list, a link) when it scores close
enough. Sources are ordered newest first and numbered in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.intent import AnswerType
from bot.answer.models import Citation
from bot.retrieval import Passage, Query
from bot.text import LIST_ITEM, content_terms

_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


# "Our sources do not say …": a negation and a reference to the sources in one sentence, or a
# section headed like "Hvad vi ikke ved" / "Ikke i kilderne". The knowledge base marks its gaps
# this way, and quoting such a sentence as an answer would be a refusal in disguise.
_NEGATION = re.compile(r"\b(ikke|ingen|intet|not|no|none|never|cannot|can't|don't|doesn't)\b", re.I)
_SOURCES = re.compile(r"\b(kilde\w*|samling\w*|materiale\w*|sources?|material|collection)\b", re.I)
_WE = re.compile(r"\b(vi|vores|we|our|us)\b", re.I)
# "Der er ikke fundet resultater", "No results have been found": a search that came up empty.
_FOUND = re.compile(r"\b(fundet|oplyst|kendt|found|known|stated)\b", re.I)
_GAP_HEADING = re.compile(
    r"\b(ikke|not)\b.*\b(ved|vide|fundet|finde|kilde\w*|know\w*|found|sources?)\b", re.I
)


def is_absence(text: str, section: str = "") -> bool:
    """Whether a unit says the material lacks something."""
    last_heading = section.split(" › ")[-1] if section else ""
    if _GAP_HEADING.search(last_heading):
        return True
    sentences = [x for x in re.split(r"(?<=[.!?])\s+|\n", text) if any(c.isalpha() for c in x)]
    return bool(sentences) and all(
        _NEGATION.search(sentence)
        and (_SOURCES.search(sentence) or _WE.search(sentence) or _FOUND.search(sentence))
        for sentence in sentences
    )


@dataclass
class Unit:
    """A quotable piece of a passage."""

    text: str
    passage: Passage
    order: int
    terms: frozenset[str]
    context_terms: frozenset[str]
    score: float = 0.0
    coverage: float = 0.0
    typed: bool = False  # of the answer type the question asks for

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def is_absence(self) -> bool:
        return is_absence(self.text, self.passage.metadata.get("section", ""))


@dataclass
class Composition:
    """The chosen units and their numbered sources."""

    lines: list[str]
    citations: list[Citation]
    dates_differ: bool
    languages: frozenset[str] = frozenset()


def make_units(
    passages: list[Passage], terms_of: Callable[[str, str], frozenset[str]] | None = None
) -> list[Unit]:
    """One quotable unit per retrieved passage (passages are sentence-level chunks)."""
    terms_of = terms_of or (lambda _id, text: frozenset(content_terms(text)))
    units = []
    for passage in passages:
        meta = passage.metadata
        # Title, heading and the neighbouring sentences give a unit its context.
        around = f"{meta.get('title', '')} {meta.get('section', '')} {meta.get('window', '')}"
        context = frozenset(content_terms(around))
        units.append(
            Unit(
                passage.text,
                passage,
                int(meta.get("chunk", 0)),
                terms_of(passage.id, passage.text),
                context,
            )
        )
    return units


@dataclass(frozen=True)
class Weights:
    """How unit scores are made and units chosen; calibrated with `python -m bot eval`."""

    coverage: float = 0.5  # share of the question's weighted terms found in the unit
    context: float = 0.8  # credit for terms found only around the unit (title, heading, window)
    dense: float = 0.3  # semantic similarity, relative to the best unit
    fused: float = 0.2  # hybrid retrieval rank (dense + BM25)
    number_bonus: float = 0.1  # the question asks how many/much/when and the unit has a number
    type_bonus: float = 0.2  # "which …" and a list of those, or "how can we …" and a link
    type_share: float = 0.6  # the best unit of the asked type is kept from this share of the best
    dense_band: float = 0.08  # e5 similarities sit in a narrow band: distance to the best
    relative: float = 0.7  # runners-up must reach this share of the best score
    max_units: int = 4
    max_sources: int = 3  # more sources make a short answer harder to check
    second_source: float = 0.6  # a differently dated source is added from this share
    gap_share: float = 0.85  # a "not in our sources" unit wins from this share of the best


def score_units(
    units: list[Unit],
    query: Query,
    idf: Callable[[str], float],
    w: Weights = Weights(),
    asked: AnswerType | None = None,
) -> None:
    """Score every unit in place: term coverage, semantic similarity, retrieval rank, answer type."""
    weights = {t: wt * idf(t) for t, wt in query.weights().items()}
    total = sum(weights.values()) or 1.0
    top_dense = max((u.passage.dense for u in units), default=0.0)
    top_fused = max((u.passage.score for u in units), default=0.0) or 1.0
    asked = asked or AnswerType.of(query.text)
    asked_numbers = set(_NUMBERS.findall(query.text))
    for unit in units:
        own = sum(wt for t, wt in weights.items() if t in unit.terms)
        context = sum(
            wt for t, wt in weights.items() if t in unit.context_terms and t not in unit.terms
        )
        unit.coverage = (own + w.context * context) / total
        dense = unit.passage.dense
        dense_rel = max(0.0, 1.0 - (top_dense - dense) / w.dense_band) if dense else 0.0
        length_penalty = 1.0 / (1.0 + max(0, len(unit.terms) - 40) / 80)
        has_new_number = bool(set(_NUMBERS.findall(unit.text)) - asked_numbers)
        unit.typed = asked.fits(unit.text, unit.passage.metadata)
        unit.score = (
            w.coverage * unit.coverage * length_penalty
            + w.dense * dense_rel
            + w.fused * unit.passage.score / top_fused
            + (w.number_bonus if asked.number and has_new_number else 0.0)
            + (w.type_bonus if unit.typed else 0.0)
        )


def _redundant(unit: Unit, chosen: list[Unit]) -> bool:
    for other in chosen:
        if unit.text == other.text:
            return True
        union = unit.terms | other.terms
        if union and len(unit.terms & other.terms) / len(union) > 0.6:
            return True
    return False


def select_units(units: list[Unit], w: Weights = Weights()) -> list[Unit]:
    """The best units: the top one, close runners-up, and a differently dated second source."""
    ordered = sorted(units, key=lambda u: -u.score)
    gap = next((u for u in ordered if u.is_absence), None)
    ranked = [u for u in ordered if not u.is_absence]
    # When the material's own "we don't know X" covers the question at least as well as any
    # answer and scores nearly as high, the honest reply is that gap, not a near miss.
    if gap and (
        not ranked
        or (gap.coverage > ranked[0].coverage and gap.score >= w.gap_share * ranked[0].score)
    ):
        return [gap]
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    for unit in ranked[1:]:
        if len(chosen) >= w.max_units:
            break
        if unit.score < w.relative * best.score:
            continue
        docs = {u.doc_id for u in chosen}
        if unit.doc_id not in docs and len(docs) >= w.max_sources:
            continue
        if not _redundant(unit, chosen):
            chosen.append(unit)
    _keep_typed(ranked, chosen, w)
    dates = {u.passage.metadata.get("source_date") for u in chosen}
    if len({u.doc_id for u in chosen}) == 1:
        for unit in ranked[1:]:
            if unit.doc_id == best.doc_id:
                continue
            if unit.passage.metadata.get("source_date") in dates:
                break
            if unit.score >= w.second_source * best.score and not _redundant(unit, chosen):
                chosen.append(unit)
            break
    return chosen


def _keep_typed(ranked: list[Unit], chosen: list[Unit], w: Weights) -> None:
    """Make room for the best unit of the asked type ("which funds" → the list of funds)."""
    typed = next((u for u in ranked if u.typed), None)
    if typed is None or typed in chosen or typed.score < w.type_share * ranked[0].score:
        return
    if _redundant(typed, chosen):
        return
    while len(chosen) >= w.max_units or (
        typed.doc_id not in {u.doc_id for u in chosen}
        and len({u.doc_id for u in chosen}) >= w.max_sources
    ):
        if len(chosen) == 1:
            break
        chosen.pop()
    chosen.append(typed)


def compose(
    units: list[Unit], previous: Callable[[Passage], str | None] | None = None
) -> Composition:
    """Group chosen units by document, newest document first, and number the sources.

    A sentence that opens with a pronoun ("It links to …", "Det henviser til …") is quoted
    with the sentence before it (from `previous`), so that the reader knows what "it" is.
    """
    by_doc: dict[str, list[Unit]] = {}
    for unit in units:
        by_doc.setdefault(unit.doc_id, []).append(unit)
    ordered = sorted(
        by_doc.values(),
        key=lambda group: (
            group[0].passage.metadata.get("source_date", ""),
            max(u.score for u in group),
        ),
        reverse=True,
    )
    lines: list[str] = []
    citations: list[Citation] = []
    for n, group in enumerate(ordered, 1):
        group.sort(key=lambda u: (u.passage.metadata.get("chunk", 0), u.order))
        meta = group[0].passage.metadata
        quoted = {u.text for u in group}
        texts = [_with_antecedent(u, quoted, previous) for u in group]
        for text in texts:
            lines.append(_quote_line(text, n))
        citations.append(
            Citation(
                n=n,
                title=meta.get("title", meta.get("file", "")),
                url=meta.get("source_url", ""),
                date=meta.get("source_date", ""),
                file=meta.get("file", ""),
                quote=" ".join(texts),
                page=meta.get("page"),
                section=meta.get("section", ""),
            )
        )
    dates = {c.date for c in citations if c.date}
    languages = frozenset(u.passage.metadata.get("language", "da") for u in units)
    return Composition(lines, citations, len(dates) > 1, languages)


# Pronouns that point back to the sentence before ("It links to …", "Det henviser til …"); a
# quote opening with one needs that sentence. Danish "den/det/de" are pronouns only before a
# verb ("Det henviser"); before a noun they are articles ("Den sociale investeringsfond").
_ANAPHOR = re.compile(
    r"^(?:(?:dette|denne|disse|han|hun|hans|hendes|deres|derfor|"
    r"it|its|this|that|these|those|they|their|he|she|his|her|therefore)\b"
    r"|(?:det|den|de)\s+(?:er|var|har|havde|blev|bliver|kan|skal|vil|må|henviser|gælder|"
    r"betyder|handler|viser|består|indeholder|omfatter|nævner)\b)",
    re.IGNORECASE,
)


def _with_antecedent(
    unit: Unit, quoted: set[str], previous: Callable[[Passage], str | None] | None
) -> str:
    if previous is None or unit.passage.metadata.get("form", "sentence") != "sentence":
        return unit.text
    if not _ANAPHOR.match(unit.text):
        return unit.text
    before = previous(unit.passage)
    if not before or before in quoted or "\n" in before:
        return unit.text
    return f"{before} {unit.text}"


def _quote_line(text: str, n: int) -> str:
    if "\n" in text:
        return f"{text} [{n}]"
    # One item of a list or a table row: its own marker would double the bullet ("• - …").
    return f"• {LIST_ITEM.sub('', text, count=1)} [{n}]"

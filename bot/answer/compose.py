"""Extractive composer: quote the best sentences of the retrieved passages, with `[n]` marks.

Units are sentences; a list (with the line that introduces it) or a table row stays whole.
Each unit is scored by how much of the question's weighted terms it covers (IDF-weighted,
with its section heading as context) and by the rank of its passage. The best 1-4
non-redundant units are kept. To show disagreement or change over time, the best unit of a
second, differently dated document is added when it is nearly as good. Sources are ordered
newest first and numbered in that order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.answer.models import Citation
from bot.retrieval import Passage, Query
from bot.text import content_terms

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“«(]?[A-ZÆØÅ0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_MAX_LIST_CHARS = 700
_QUANTITY = re.compile(
    r"^\s*(hvor (mange|meget|stor|store|længe|gammel)|hvornår|hvilket år|how (many|much|big|large|long|old)|when|what year)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")

# Sentences in which the material says it does not know something.
_ABSENCE = re.compile(
    r"(\b(står|findes|fremgår|nævnes|oplyses)\b[^.]{0,40}\bikke\b[^.]{0,60}\b(kilde|samling|materiale|side|nyhed)"
    r"|\bikke\b[^.]{0,30}\b(kunnet finde|fundet)\b[^.]{0,40}\bkilde"
    r"|\bingen\b[^.]{0,60}\bi (de |vores )?kilder"
    r"|\bkan ikke oplyse\b"
    r"|\bnot (stated|available|included|found|given|mentioned)\b[^.]{0,40}\b(sources?|material|collection)"
    r"|\b(sources?|material) (does|do) not (say|state|include|contain|mention))",
    re.IGNORECASE,
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

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def is_absence(self) -> bool:
        return bool(_ABSENCE.search(self.text))


@dataclass
class Composition:
    """The chosen units and their numbered sources."""

    lines: list[str]
    citations: list[Citation]
    best: Unit | None
    dates_differ: bool


def split_units(text: str) -> list[str]:
    """Sentences, with each list (and its lead-in line) or table kept whole when short."""
    units: list[str] = []
    paragraph: list[str] = []
    lines = [line.rstrip() for line in text.splitlines()]

    def flush_paragraph() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            units.extend(s.strip() for s in _SENTENCE_END.split(joined) if s.strip())
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if _LIST_ITEM.match(line):
            lead = ""
            if paragraph and paragraph[-1].endswith(":"):
                lead = paragraph.pop()
            flush_paragraph()
            items = []
            while i < len(lines) and (_LIST_ITEM.match(lines[i]) or (items and lines[i].startswith("  "))):
                items.append(lines[i].strip())
                i += 1
            block = "\n".join([lead, *items] if lead else items)
            if len(block) <= _MAX_LIST_CHARS:
                units.append(block)
            else:
                units.extend(items)
            continue
        if not line.strip():
            flush_paragraph()
        else:
            paragraph.append(line.strip())
        i += 1
    flush_paragraph()
    return [u for u in units if any(ch.isalpha() for ch in u)]


def make_units(passages: list[Passage]) -> list[Unit]:
    """All units of the passages, with their term sets."""
    units = []
    for passage in passages:
        meta = passage.metadata
        context = frozenset(content_terms(f"{meta.get('title', '')} {meta.get('section', '')}"))
        for order, text in enumerate(split_units(passage.text)):
            units.append(Unit(text, passage, order, frozenset(content_terms(text)), context))
    return units


def score_units(units: list[Unit], query: Query, idf: Callable[[str], float], passages: list[Passage]) -> None:
    """Score every unit in place: weighted term coverage, passage rank and answer type."""
    weights = {t: w * idf(t) for t, w in query.weights().items()}
    total = sum(weights.values()) or 1.0
    top = max((p.score for p in passages), default=1.0) or 1.0
    wants_number = bool(_QUANTITY.match(query.text))
    for unit in units:
        own = sum(w for t, w in weights.items() if t in unit.terms)
        context = sum(w for t, w in weights.items() if t in unit.context_terms and t not in unit.terms)
        unit.coverage = (own + 0.5 * context) / total
        length_penalty = 1.0 / (1.0 + max(0, len(unit.terms) - 40) / 80)
        unit.score = (
            0.65 * unit.coverage * length_penalty
            + 0.35 * unit.passage.score / top
            + (0.1 if wants_number and _NUMBER.search(unit.text) else 0.0)
        )


def _redundant(unit: Unit, chosen: list[Unit]) -> bool:
    for other in chosen:
        if unit.text == other.text:
            return True
        union = unit.terms | other.terms
        if union and len(unit.terms & other.terms) / len(union) > 0.6:
            return True
    return False


def select_units(units: list[Unit], max_units: int = 4, relative: float = 0.75) -> list[Unit]:
    """The best units: the top one, close runners-up, and a differently dated second source."""
    ranked = sorted(units, key=lambda u: -u.score)
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    for unit in ranked[1:]:
        if len(chosen) >= max_units:
            break
        if unit.score < relative * best.score or unit.is_absence:
            continue
        if not _redundant(unit, chosen):
            chosen.append(unit)
    dates = {u.passage.metadata.get("source_date") for u in chosen}
    if len({u.doc_id for u in chosen}) == 1 and len(chosen) < max_units + 1:
        for unit in ranked[1:]:
            other_date = unit.passage.metadata.get("source_date")
            if unit.doc_id == best.doc_id or other_date in dates or unit.is_absence:
                continue
            if unit.score >= 0.6 * best.score and unit.coverage >= 0.5 * best.coverage and not _redundant(unit, chosen):
                chosen.append(unit)
            break
    return chosen


def compose(units: list[Unit]) -> Composition:
    """Group chosen units by document, newest document first, and number the sources."""
    by_doc: dict[str, list[Unit]] = {}
    for unit in units:
        by_doc.setdefault(unit.doc_id, []).append(unit)
    ordered = sorted(
        by_doc.values(),
        key=lambda group: (group[0].passage.metadata.get("source_date", ""), -max(u.score for u in group)),
        reverse=True,
    )
    lines: list[str] = []
    citations: list[Citation] = []
    for n, group in enumerate(ordered, 1):
        group.sort(key=lambda u: (u.passage.metadata.get("chunk", 0), u.order))
        meta = group[0].passage.metadata
        for unit in group:
            lines.append(_quote_line(unit.text, n))
        citations.append(
            Citation(
                n=n,
                title=meta.get("title", meta.get("file", "")),
                url=meta.get("source_url", ""),
                date=meta.get("source_date", ""),
                file=meta.get("file", ""),
                quote=" ".join(u.text for u in group),
                page=meta.get("page"),
                section=meta.get("section", ""),
            )
        )
    dates = {c.date for c in citations if c.date}
    return Composition(lines, citations, units[0] if units else None, len(dates) > 1)


def _quote_line(text: str, n: int) -> str:
    if "\n" in text:
        return f"{text} [{n}]"
    return f"• {text} [{n}]"


def idf_from_chunks(token_lists: list[list[str]]) -> Callable[[str], float]:
    """A smoothed IDF function over the chunk collection."""
    n = len(token_lists)
    df: dict[str, int] = {}
    for tokens in token_lists:
        for t in set(tokens):
            df[t] = df.get(t, 0) + 1

    def idf(term: str) -> float:
        return math.log(1 + (n - df.get(term, 0) + 0.5) / (df.get(term, 0) + 0.5))

    return idf

"""Extractive composer: quote the best sentences of the retrieved passages, with `[n]` marks.

Units are sentences; a list (with the line that introduces it) or a table row stays whole.
The fitted ranker (`bot.answer.model`) scores every candidate unit; the best one is quoted,
with runners-up that score close to it (at most `max_units`, both fitted by `make train`).
A whole list is quoted with only its items that answer the question (`trim_list`): a fitted
item model scores them, and those close to the best (a fitted share, at most a fitted number)
are quoted under the list's lead-in, followed by "…". Sources are ordered newest first and
numbered in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.answer.models import Citation
from bot.retrieval import Passage
from bot.text import LIST_ITEM, content_terms

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
    heading_terms: frozenset[str] = frozenset()
    score: float = 0.0  # the ranker's probability that this unit answers the question
    coverage: float = 0.0
    parts: list[tuple[str, float]] = field(default_factory=list)  # a list's items, similarity
    part_rows: np.ndarray | None = None  # their ITEM_FEATURES (set by the answerer)

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
    passages: list[Passage],
    terms_of: Callable[[str, str], frozenset[str]] | None = None,
    parts_of: Callable[[str], list[tuple[str, float]]] | None = None,
) -> list[Unit]:
    """One quotable unit per retrieved passage (passages are sentence-level chunks)."""
    terms_of = terms_of or (lambda _id, text: frozenset(content_terms(text)))
    parts_of = parts_of or (lambda _id: [])
    units = []
    for passage in passages:
        meta = passage.metadata
        heading = f"{meta.get('title', '')} {meta.get('section', '')}"
        # Title, heading and the neighbouring sentences give a unit its context.
        around = f"{heading} {meta.get('window', '')}"
        units.append(
            Unit(
                passage.text,
                passage,
                int(meta.get("chunk", 0)),
                terms_of(passage.id, passage.text),
                frozenset(content_terms(around)),
                frozenset(content_terms(heading)),
                parts=parts_of(passage.id),
            )
        )
    return units


def trim_list(unit: Unit, scores: Sequence[float], share: float, max_items: int) -> str:
    """The unit's text, or for a whole list its lead-in and the items that answer best.

    `scores` rank the list's items (`unit.parts`); items scoring at least `share` of the best
    are kept, at most `max_items`, in the list's order. `max_items` 0 quotes lists whole.
    """
    if not unit.parts or max_items <= 0 or len(scores) != len(unit.parts):
        return unit.text
    best = max(scores)
    close = sorted(
        (i for i, score in enumerate(scores) if score >= share * best),
        key=lambda i: -scores[i],
    )[:max_items]
    if len(close) == len(unit.parts):
        return unit.text
    first = unit.text.split("\n", 1)[0]
    lead = [] if LIST_ITEM.match(first) else [first]
    return "\n".join([*lead, *(unit.parts[i][0] for i in sorted(close)), "…"])


def _redundant(unit: Unit, chosen: list[Unit]) -> bool:
    for other in chosen:
        if unit.text == other.text or unit.text in other.text or other.text in unit.text:
            return True
        union = unit.terms | other.terms
        if union and len(unit.terms & other.terms) / len(union) > 0.6:
            return True
    return False


def select_units(units: list[Unit], add_share: float, max_units: int) -> list[Unit]:
    """The ranker's best unit, then runners-up scoring at least add_share of it.

    Units must already carry the ranker's `score`. Near-duplicates of a chosen unit are skipped.
    """
    ranked = sorted(units, key=lambda u: -u.score)
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    for unit in ranked[1:]:
        if len(chosen) >= max_units or unit.score < add_share * best.score:
            break
        if not _redundant(unit, chosen) and not unit.is_absence:
            chosen.append(unit)
    return chosen


def compose(units: list[Unit], quote: Callable[[Unit], str] | None = None) -> Composition:
    """Group chosen units by document, newest document first, and number the sources.

    `quote` gives the text quoted for a unit (e.g. a trimmed list); by default its whole text.
    """
    quote = quote or (lambda unit: unit.text)
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
        texts = [quote(u) for u in group]
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


def _quote_line(text: str, n: int) -> str:
    if "\n" in text:
        return f"{text} [{n}]"
    # One item of a list or a table row: its own marker would double the bullet ("• - …").
    return f"• {LIST_ITEM.sub('', text, count=1)} [{n}]"

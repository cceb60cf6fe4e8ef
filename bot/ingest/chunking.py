"""Heading-aware, then sentence-based splitting of documents into chunks.

Markdown is cut at headings first (the heading path becomes the chunk's `section`), then each
section into quotable units: sentences, a list with its lead-in line, a table row. Over-long
units are split on sentence boundaries by LlamaIndex's `SentenceSplitter`. Tables become one
line per row with the header repeated ("Periode: 2020-2024"), so a row quoted alone still reads.

A table or list too long to quote whole is also summarised in one unit: its lead-in and the
label of every row or item ("Partner: A; B; C."). "Which foundations take part?" is answered
by that unit, where any single row would name only one of them.

Each item of a list kept whole is also stored as a *part* of it (form "part", with `parent`,
the list's chunk number). Parts are never retrieved on their own: their vectors let the
composer quote only the items of a list that answer the question, with the list's lead-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.ingest.loaders import SourceDocument
from bot.text import LIST_ITEM, MAX_NAME_WORDS

CHUNKER_VERSION = "9"
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“«(]?[A-ZÆØÅ0-9])")
_MAX_LIST_CHARS = 700
_LABEL_END = re.compile(r"\s[–—-]\s|:\s")
_LEADING_BOLD = re.compile(r"^(\*\*|__)(.+?)\1")
# Marks a table's summary line between flatten_tables and split_units (never stored).
_SUMMARY_MARK = "\u2063"


@dataclass(frozen=True)
class Chunk:
    """A piece of a document ready to embed."""

    text: str
    section: str
    page: int | None
    window: str = ""
    form: str = "sentence"  # sentence | list (kept whole) | item (of a long list) | summary
    parent: int | None = None  # a part (one item of a whole list): the list's chunk number

    def embed_text(self, title: str) -> str:
        """What the embedder and BM25 see: title and section give the chunk its context.

        A part is embedded with its list's lead-in (kept in `window`), which says what it is.
        """
        if self.form == "part" and self.window:
            return f"{self.section or title}\n{self.window}\n{self.text}"
        return f"{self.section or title}\n{self.text}"


def clean_inline(text: str) -> str:
    """Drop Markdown emphasis and turn links into 'text (url)'."""
    text = _EMPHASIS.sub(r"\2", text)
    return _LINK.sub(
        lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text
    )


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def label(text: str) -> str | None:
    """The name an item or cell starts with: its bold lead, or the words before " – " or ":".

    A cut anywhere else ("Han måtte forlade Rådet, da …") could change what the text says.
    """
    text = LIST_ITEM.sub("", text.strip(), count=1)
    bold = _LEADING_BOLD.match(text)
    if bold:
        found = bold.group(2)
    else:
        end = _LABEL_END.search(text)
        found = text[: end.start()] if end else text.rstrip(".")
    found = found.strip(" *_")
    if not any(c.isalpha() for c in found) or len(found.split()) > MAX_NAME_WORDS:
        return None
    return found


def summary_of(labels: list[str | None], lead: str = "") -> str | None:
    """One unit naming every item, when at least three items and most of them have a label."""
    named = list(dict.fromkeys(x for x in labels if x))
    if len(named) < 3 or len(named) * 3 < len(labels) * 2:
        return None
    return f"{lead} {'; '.join(named)}.".strip() if lead else f"{'; '.join(named)}."


def flatten_tables(text: str) -> str:
    """Rewrite Markdown tables as one self-contained line per row, long ones with a summary."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            header = _cells(line)
            rows: list[list[str]] = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            flat = []
            for row in rows:
                pairs = [f"{h}: {c}" if h else c for h, c in zip(header, row, strict=False) if c]
                flat.append("- " + "; ".join(pairs) + ".")
            summary = (
                _table_summary(header, rows) if len("\n".join(flat)) > _MAX_LIST_CHARS else None
            )
            out.extend(["", _SUMMARY_MARK + summary, ""] if summary else [""])
            out.extend(flat)
            out.append("")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _table_summary(header: list[str], rows: list[list[str]]) -> str | None:
    """ "Header: name; name; …." for the first column whose cells lead with a bold name.

    Bold marks a row's name ("**Alfa Fonden**"); a column of dates or field names
    ("Emne: Hvad; Formål; …") would make a summary that says nothing.
    """
    for col, name in enumerate(header):
        cells = [row[col] if col < len(row) else "" for row in rows]
        if sum(bool(_LEADING_BOLD.match(cell)) for cell in cells) * 3 < len(cells) * 2:
            continue
        return summary_of([label(cell) for cell in cells], f"{name}:" if name else "")
    return None


def sections(text: str) -> list[tuple[str, str]]:
    """(heading path, body) pairs; text before the first heading has an empty path."""
    path: list[tuple[int, str]] = []
    current: list[str] = []
    result: list[tuple[str, str]] = []

    def flush() -> None:
        body = "\n".join(current).strip()
        if body:
            result.append((" › ".join(title for _, title in path), body))
        current.clear()

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, clean_inline(match.group(2))))
        else:
            current.append(line)
    flush()
    return result


# Abbreviations after which a full stop does not end a sentence (Danish and English).
_ABBREVIATIONS = {
    "ca",
    "fx",
    "f.eks",
    "bl.a",
    "mio",
    "mia",
    "kr",
    "nr",
    "jf",
    "dvs",
    "evt",
    "inkl",
    "ekskl",
    "pga",
    "mht",
    "ift",
    "osv",
    "mv",
    "m.v",
    "m.fl",
    "st",
    "tlf",
    "hhv",
    "vedr",
    "pr",
    "ang",
    "e.g",
    "i.e",
    "etc",
    "approx",
    "no",
    "vs",
    "mr",
    "mrs",
    "dr",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "okt",
    "oct",
    "nov",
    "dec",
}


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; abbreviations ("ca.", "mio. kr.") do not end one."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start : match.start()].rstrip()
        last_word = before.rsplit(None, 1)[-1].lower().strip('(["“‘«.') if before else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        sentences.append(text[start : match.start()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def split_units(text: str) -> list[tuple[str, str]]:
    """(unit, form) pairs: sentences, each list (with its lead-in) kept whole when short.

    A long list becomes its items, preceded by its summary (or at least its lead-in).
    """
    units: list[tuple[str, str]] = []
    paragraph: list[str] = []
    lines = [line.rstrip() for line in text.splitlines()]

    def flush_paragraph() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            units.extend((sentence, "sentence") for sentence in split_sentences(joined))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(_SUMMARY_MARK):
            flush_paragraph()
            units.append((line[len(_SUMMARY_MARK) :].strip(), "summary"))
            i += 1
            continue
        if LIST_ITEM.match(line):
            lead = ""
            if paragraph and paragraph[-1].endswith(":"):
                lead = paragraph.pop()
            flush_paragraph()
            items = []
            while i < len(lines) and (
                LIST_ITEM.match(lines[i]) or (items and lines[i].startswith("  "))
            ):
                items.append(lines[i].strip())
                i += 1
            block = "\n".join([lead, *items] if lead else items)
            if len(block) <= _MAX_LIST_CHARS:
                units.append((block, "list" if len(items) > 1 else "item"))
            else:
                summary = summary_of([label(item) for item in items], lead)
                if summary:
                    units.append((summary, "summary"))
                elif lead:
                    units.append((lead, "sentence"))
                units.extend((item, "item") for item in items)
            continue
        if not line.strip():
            flush_paragraph()
        else:
            paragraph.append(line.strip())
        i += 1
    flush_paragraph()
    return [(u, form) for u, form in units if any(ch.isalpha() for ch in u)]


def _merge_fragments(units: list[tuple[str, str]], min_words: int = 4) -> list[tuple[str, str]]:
    """Join a fragment ("Side 2.", a stray label) to the unit after it; alone it says nothing."""
    merged: list[tuple[str, str]] = []
    carry = ""
    for unit, form in units:
        unit = f"{carry} {unit}".strip() if carry else unit
        carry = ""
        if len(unit.split()) < min_words and "\n" not in unit:
            carry = unit
            continue
        merged.append((unit, form))
    if carry:
        if merged:
            merged[-1] = (f"{merged[-1][0]} {carry}", merged[-1][1])
        else:
            merged.append((carry, "sentence"))
    return merged


def _splitter(max_words: int, overlap_words: int):
    from llama_index.core.node_parser import SentenceSplitter

    # Words, not tiktoken tokens: deterministic and needs no tokenizer download.
    return SentenceSplitter(chunk_size=max_words, chunk_overlap=overlap_words, tokenizer=str.split)


def chunk_document(
    doc: SourceDocument, max_words: int = 120, overlap_words: int = 15
) -> list[Chunk]:
    """Split a document into quotable units (sentence, whole list, table row) with context.

    Units are what the composer quotes, so they are indexed one by one (a sentence window, as
    LlamaIndex's SentenceWindowNodeParser does): dense similarity is then measured against
    exactly the text that would be quoted. A unit longer than max_words is split further.
    """
    splitter = None
    chunks: list[Chunk] = []
    for text, page in doc.parts:
        prepared = clean_inline(flatten_tables(text))
        for section, body in sections(prepared):
            units = _merge_fragments(split_units(body))
            for i, (unit, form) in enumerate(units):
                if len(unit.split()) > max_words:
                    splitter = splitter or _splitter(max_words, overlap_words)
                    pieces = [p.strip() for p in splitter.split_text(unit) if p.strip()]
                else:
                    pieces = [unit]
                before = units[i - 1][0] if i > 0 else ""
                after = units[i + 1][0] if i + 1 < len(units) else ""
                for piece in pieces:
                    window = "\n".join(x for x in (before, piece, after) if x)
                    chunks.append(Chunk(piece, section, page, window, form))
    # Parts come after every unit, so a unit's neighbours are still the units around it.
    parts = [
        Chunk(item, chunk.section, chunk.page, lead, "part", parent)
        for parent, chunk in enumerate(chunks)
        if chunk.form == "list"
        for lead, item in _list_parts(chunk.text)
    ]
    return chunks + parts


def _list_parts(text: str) -> list[tuple[str, str]]:
    """(lead-in, item) for each item of a whole list; a continuation line stays with its item."""
    lines = text.split("\n")
    lead = "" if LIST_ITEM.match(lines[0]) else lines[0]
    items: list[str] = []
    for line in lines[1:] if lead else lines:
        if LIST_ITEM.match(line) or not items:
            items.append(line)
        else:
            items[-1] = f"{items[-1]}\n{line}"
    return [(lead, item) for item in items] if len(items) > 1 else []


def chunk_metadata(
    doc: SourceDocument, chunk: Chunk, doc_hash: str, index: int, indexed_at: str
) -> dict[str, Any]:
    """Metadata stored with a chunk: Chroma accepts only str/int/float/bool values."""
    meta: dict[str, Any] = {
        **doc.metadata,
        "doc_id": doc.doc_id,
        "doc_hash": doc_hash,
        "chunk": index,
        "section": chunk.section,
        "indexed_at": indexed_at,
        "window": chunk.window,
        "form": chunk.form,
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.parent is not None:
        meta["parent"] = chunk.parent
    return meta

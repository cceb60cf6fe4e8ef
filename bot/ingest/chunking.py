"""Heading-aware, then sentence-based splitting of documents into chunks.

Markdown is cut at headings first (the heading path becomes the chunk's `section`), then long
sections are split on sentence boundaries by LlamaIndex's `SentenceSplitter`. Tables become one
line per row with the header repeated ("Periode: 2020-2024"), so a row quoted alone still reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.ingest.loaders import SourceDocument

CHUNKER_VERSION = "3"
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document ready to embed."""

    text: str
    section: str
    page: int | None

    def embed_text(self, title: str) -> str:
        """What the embedder and BM25 see: title and section give the chunk its context."""
        head = f"{title} – {self.section}" if self.section else title
        return f"{head}\n{self.text}"


def clean_inline(text: str) -> str:
    """Drop Markdown emphasis and turn links into 'text (url)'."""
    text = _EMPHASIS.sub(r"\2", text)
    return _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def flatten_tables(text: str) -> str:
    """Rewrite Markdown tables as one self-contained line per row."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            header = _cells(line)
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = _cells(lines[i])
                pairs = [f"{h}: {c}" if h else c for h, c in zip(header, row, strict=False) if c]
                out.append("- " + "; ".join(pairs) + ".")
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


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


def _splitter(chunk_words: int, overlap_words: int):
    from llama_index.core.node_parser import SentenceSplitter

    # Words, not tiktoken tokens: deterministic and needs no tokenizer download.
    return SentenceSplitter(
        chunk_size=chunk_words,
        chunk_overlap=overlap_words,
        tokenizer=str.split,
        paragraph_separator="\n\n",
    )


def chunk_document(doc: SourceDocument, chunk_words: int = 200, overlap_words: int = 20) -> list[Chunk]:
    """Split a loaded document into chunks carrying section or page."""
    splitter = None
    chunks: list[Chunk] = []
    for text, page in doc.parts:
        prepared = clean_inline(flatten_tables(text))
        for section, body in sections(prepared):
            if len(body.split()) <= chunk_words:
                pieces = [body]
            else:
                splitter = splitter or _splitter(chunk_words, overlap_words)
                pieces = splitter.split_text(body)
            chunks.extend(Chunk(p.strip(), section, page) for p in pieces if p.strip())
    return chunks


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
    }
    if chunk.page is not None:
        meta["page"] = chunk.page
    return meta

"""Render an `Answer` as Telegram HTML messages.

Every piece of document and user text is escaped; the only tags are ours (<b>, <a>, <i>).
Telegram rejects messages over 4,096 characters, so long answers are split at paragraph or
line boundaries (never inside a tag, since each line's tags open and close on that line), and
the sources block is always kept whole in the last message.
"""

from __future__ import annotations

import html
import re

from bot.answer.messages import text_for
from bot.answer.models import Answer, Citation

LIMIT = 4096
# Headroom: Telegram counts UTF-16 units after parsing; we count UTF-16 units before parsing
# (escapes such as &amp; only shrink when parsed; emoji and other astral characters count 2).
_BUDGET = 3900
_TAG = re.compile(r"<[^>]+>")


def render_source(citation: Citation) -> str:
    """'[1] <a href=…>Title</a> (2024-04-17, s. 3)'."""
    title = html.escape(citation.title)
    link = (
        f'<a href="{html.escape(citation.url, quote=True)}">{title}</a>' if citation.url else title
    )
    details = ", ".join(
        x for x in (citation.date, f"s. {citation.page}" if citation.page else "") if x
    )
    return f"[{citation.n}] {link}" + (f" ({html.escape(details)})" if details else "")


def render_answer(answer: Answer) -> list[str]:
    """The answer as one or more HTML messages, sources last and whole."""
    body_parts = []
    if answer.notice:
        body_parts.append(f"<i>{html.escape(answer.notice)}</i>")
    body_parts.append(html.escape(answer.text))
    body = "\n\n".join(body_parts)
    sources = ""
    if answer.citations:
        lines = [f"<b>{html.escape(text_for(answer.language, 'sources_heading'))}</b>"]
        lines += [render_source(c) for c in answer.citations]
        sources = "\n".join(lines)
    return split_message(body, sources)


def split_message(body: str, tail: str = "", budget: int = _BUDGET) -> list[str]:
    """Split body at paragraph, then line, boundaries; append tail whole to the last part."""
    pieces = _blocks(body, budget)
    if tail:
        pieces.append(("\n\n", tail))
    chunks: list[str] = []
    current = ""
    for separator, block in pieces:
        candidate = f"{current}{separator}{block}" if current else block
        if current and utf16_len(candidate) > budget:
            chunks.append(current)
            candidate = block
        current = candidate
    if current:
        chunks.append(current)
    return chunks


def _blocks(text: str, budget: int) -> list[tuple[str, str]]:
    """(separator, text) pieces: paragraphs; a paragraph over budget as lines; a line over
    budget hard-cut. The separator is what joins a piece to the one before it."""
    out: list[tuple[str, str]] = []
    for paragraph in text.split("\n\n"):
        if utf16_len(paragraph) <= budget:
            out.append(("\n\n", paragraph))
            continue
        separator = "\n\n"
        for line in paragraph.split("\n"):
            while utf16_len(line) > budget:
                cut = _safe_cut(line, _chars_within(line, budget))
                out.append((separator, line[:cut]))
                line, separator = line[cut:], "\n"
            out.append((separator, line))
            separator = "\n"
    return out


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram's 4,096 limit is counted in."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _chars_within(line: str, budget: int) -> int:
    """How many leading characters of line fit in budget UTF-16 units."""
    units = 0
    for i, ch in enumerate(line):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > budget:
            return i
    return len(line)


def _safe_cut(line: str, budget: int) -> int:
    """A cut point at or before budget that is not inside a tag or an &entity; (prefer a space)."""
    cut = line.rfind(" ", 0, budget)
    cut = cut if cut > budget // 2 else budget
    for match in _TAG.finditer(line):
        if match.start() < cut < match.end():
            cut = match.start()
    amp = line.rfind("&", 0, cut)
    if amp != -1 and ";" not in line[amp:cut]:
        cut = amp
    return cut


def strip_html(text: str) -> str:
    """Plain text for the fallback when Telegram rejects our HTML."""
    return html.unescape(_TAG.sub("", text))

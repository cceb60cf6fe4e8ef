"""Input guard: the first pipeline step. Cleans the text and stops what should not be answered.

Policy (not per-question rules): invisible characters are stripped; empty, over-long and
symbol-only messages get a polite reply; attempts to change the bot's instructions and requests
for private data about people are declined; personal data typed by the user is answered with a
warning, and removed from the text that is searched, logged or stored.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from bot.privacy import find_personal_data, redact

# Unicode tag characters (used to smuggle hidden instructions), zero-width and bidi controls.
_INVISIBLE = re.compile(
    "[\U000e0000-\U000e007f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]"
)


def _any_of(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# Attempts to override instructions, in Danish and English.
_INJECTION = _any_of(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above)\b",
    r"\b(ignorer|glem|se bort fra)\b.{0,40}\b(instruks(er)?|instruktion(er)?|prompt|regler)\b",
    r"\bsystem\s*-?prompt\b",
    r"\b(you are now|act as|pretend to be|du er nu|lad som om)\b",
    r"\b(developer|jailbreak|DAN) mode\b",
)

# Requests for private data about people (not the Council's public contact routes).
_PRIVATE_REQUEST = _any_of(
    r"\b(cpr|personnumre?|personal id|id numbers?|social security)\b",
    r"\b(privat|private|hjemme)\s*-?\s*(adresse|address|nummer|number|mobil|telefon)",
    r"\bhome address\b",
    r"\b(private|personal)\s+(phone|mobile|e-?mail)",
)


@dataclass(frozen=True)
class GuardResult:
    """The cleaned question and, if it must stop here, the reason."""

    text: str
    search_text: str
    stop: str | None = None
    personal_data: bool = False
    length: int = 0


# Terminal escape sequences (colours, cursor moves) and the other control characters.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Markup a question may arrive wrapped in: HTML tags and entities, Markdown emphasis, code,
# headings, quotes and links ("**Hvem** er [formand](url)?" asks "Hvem er formand?").
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]+\)")
_MD_MARKS = re.compile(r"(\*{1,3}|_{2,3}|`+|~~)")
_MD_LINE = re.compile(r"(?m)^\s*(?:#{1,6}|>+)\s*")


def clean(text: str) -> str:
    """NFC-normalise, drop invisible and control characters and markup, collapse whitespace."""
    text = unicodedata.normalize("NFC", text or "")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", _ANSI.sub(" ", text))
    text = _MD_LINE.sub("", _MD_LINK.sub(r"\1", text))
    text = html.unescape(_MD_MARKS.sub("", _HTML_TAG.sub(" ", text)))
    return re.sub(r"\s+", " ", text).strip()


def check(raw: str, max_chars: int) -> GuardResult:
    """Apply the policy above to one incoming message."""
    text = clean(raw)
    if not text:
        return GuardResult(text, "", stop="empty")
    if len(text) > max_chars:
        return GuardResult(text[:max_chars], "", stop="too_long", length=len(text))
    if not any(ch.isalnum() for ch in text):
        return GuardResult(text, "", stop="noise")
    personal = bool(find_personal_data(text))
    search_text = _without_personal_sentences(text) if personal else text
    if _INJECTION.search(text):
        return GuardResult(text, search_text, stop="injection", personal_data=personal)
    # Someone sharing their own CPR number is not asking for anyone else's.
    if not personal and _PRIVATE_REQUEST.search(text):
        return GuardResult(text, search_text, stop="personal_data_request", personal_data=personal)
    if not any(ch.isalpha() for ch in search_text):
        return GuardResult(text, search_text, stop="noise", personal_data=personal)
    return GuardResult(text, search_text, personal_data=personal)


def _without_personal_sentences(text: str) -> str:
    """Drop sentences that carry personal data (they are about the user, not the question);
    if nothing else is left, keep the text with the data removed."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept = [s for s in sentences if not find_personal_data(s)]
    if any(any(ch.isalpha() for ch in s) for s in kept):
        return " ".join(kept)
    return _strip_placeholders(redact(text))


def _strip_placeholders(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\[(CPR|EMAIL|TELEFON)\]", " ", text)).strip()

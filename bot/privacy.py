"""Find and redact personal data (CPR numbers, phone numbers, e-mail addresses, names).

Used on everything that could reach a log line or a stored row. Names cannot be found reliably
by a pattern, which is why chat text itself is never logged. Questions that are stored (with a
vote, or refused for the gap report) are redacted first, names included: a capitalised word
the knowledge base does not know is taken for a private person's name (`redact_names`); the
public names in the Council's own material stay. Stored rows are purged after the retention
period.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# CPR: ddmmyy-xxxx or ddmmyyxxxx, with a plausible day and month.
_CPR = re.compile(r"(?<!\d)(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])\d{2}[ -]?\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Phone numbers: an international prefix with 7-13 digits, or Danish 8 digits ("12 34 56 78",
# "1234 5678", "12345678"). Dashes are left out on purpose: ISO dates (2024-04-17) use them.
_PHONE = re.compile(
    r"(?<![\w+.,-])(?:(?:\+|00)\d{1,3}[ .]?(?:\d[ .]?){6,12}\d|\d{2}(?:[ .]?\d{2}){3}|\d{4} \d{4})(?![\w.,-]?\d)"
)

# An amount or a quantity after the digits ("40000000 kr", "12 34 56 78 mio.") is not a phone.
_UNIT_AFTER = re.compile(
    r"\s*(kr\b|kroner|dkk|mio|mia|millioner|euro|eur\b|%|procent|borgere)", re.I
)
_YEAR = re.compile(r"(?:19|20)\d{2}")


def _is_phone(match: re.Match[str]) -> bool:
    """Whether a phone-shaped match is a phone number, not two years or an amount."""
    if _UNIT_AFTER.match(match.string, match.end()):
        return False
    groups = match.group(0).split()
    return not (len(groups) == 2 and all(_YEAR.fullmatch(g) for g in groups))


def _phones(text: str) -> list[re.Match[str]]:
    return [m for m in _PHONE.finditer(text) if _is_phone(m)]


KINDS = {"cpr": _CPR, "email": _EMAIL}


@dataclass(frozen=True)
class Finding:
    """Which kinds of personal data a text contains."""

    kinds: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.kinds)


def find_personal_data(text: str) -> Finding:
    """The kinds of personal data present in text."""
    found = set()
    rest = text
    for kind, pattern in KINDS.items():
        if pattern.search(rest):
            found.add(kind)
            rest = pattern.sub(" ", rest)
    if _phones(rest):
        found.add("phone")
    return Finding(frozenset(found))


def redact(text: str) -> str:
    """Replace CPR numbers, e-mail addresses and phone numbers by placeholders."""
    text = _CPR.sub("[CPR]", text)
    text = _EMAIL.sub("[EMAIL]", text)
    return _PHONE.sub(_phone_placeholder, text)


_CAPITALISED = re.compile(r"\b[A-ZÆØÅÄÖÜ][\wæøåäöüé'-]*", re.UNICODE)


def redact_names(text: str, known: Callable[[str], bool]) -> str:
    """Replace capitalised words that `known` does not recognise by [NAVN] (acronyms stay)."""

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        head = word.split("-")[0]
        if head.isupper() or all(known(part) for part in word.split("-") if part):
            return word  # an acronym ("CPR-nummer", "DSI") or words the material uses
        return "[NAVN]"

    return _CAPITALISED.sub(replace, text)


def _phone_placeholder(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    # Years, amounts and dates have fewer digits; 8+ digits is a phone number here.
    return "[TELEFON]" if digits >= 8 and _is_phone(match) else match.group(0)

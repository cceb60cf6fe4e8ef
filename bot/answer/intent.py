"""What a question asks for, read from its first words: a number, a list, or a way in.

"Hvor mange …" wants a number, "Hvilke fonde …" the list of funds, "Hvordan kan vi …" a link.
The composer gives units of the asked type a little extra weight and keeps the best of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.text import LIST_ITEM, MAX_NAME_WORDS, STOPWORDS, content_terms, stem, words

_QUANTITY = re.compile(
    r"^\s*(hvor (mange|meget|stor|store|længe|gammel)|hvornår|hvilket år|how (many|much|big|large|long|old)|when|what year)\b",
    re.IGNORECASE,
)
# Answer types beyond quantities: "which …" wants a list; "how can I/we …" wants a way in.
_ENUMERATION = re.compile(r"^\s*(hvilke|which|list|nævn|name)\b", re.IGNORECASE)
_PROCEDURE = re.compile(
    r"^\s*(hvordan|hvor|hvem)\s+(kan|skal|må)\s+(jeg|vi|man|min|mit|vores)\b"
    r"|^\s*(how|where|who)\s+(can|do|does|should|may)\s+(i|we|my|our|one)\b"
    r"|\bhow to\b",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:dk|com|org|net|eu)\b|\S@\S")
_ENUMERATING_FORMS = frozenset({"list", "summary"})


@dataclass(frozen=True)
class AnswerType:
    """What kind of unit a question asks for, read from its first words."""

    number: bool = False  # how many / how much / when
    focus: frozenset[str] = frozenset()  # stems naming what a "which …" question lists
    address: bool = False  # how can I / where do we … : a link or an address

    @classmethod
    def of(cls, question: str) -> AnswerType:
        return cls(
            number=bool(_QUANTITY.match(question)),
            focus=enumerated(question),
            address=bool(_PROCEDURE.search(question)),
        )

    def lists(self, text: str, metadata: dict) -> bool:
        """A list, or a list's summary, labelled as a list of the focus.

        The label is the unit's lead-in or table header (before its first colon) and its
        heading: "Partner: A; B; C" under "Fonde og investorer" lists funds.
        """
        form = metadata.get("form")
        if not self.focus or form not in _ENUMERATING_FORMS:
            return False
        if form == "list" and not _names_items(text):
            return False
        lead = text.split("\n", 1)[0].split(":", 1)[0]
        heading = metadata.get("section", "").split(" › ")[-1]
        return bool(self.focus & _label_terms(lead, heading))

    def addresses(self, text: str) -> bool:
        return self.address and bool(_ADDRESS.search(text))

    def __bool__(self) -> bool:
        return bool(self.focus or self.address)

    def fits(self, text: str, metadata: dict) -> bool:
        """Whether a text is what the question asks for (a list of the focus, or a way in)."""
        return self.lists(text, metadata) or self.addresses(text)


def _names_items(text: str) -> bool:
    """Whether most items of a list are short, like names ("- Alfa Fonden"), not sentences."""
    items = [line for line in text.splitlines() if LIST_ITEM.match(line)]
    short = [i for i in items if len(i.split()) <= MAX_NAME_WORDS + 1]
    return len(items) >= 2 and len(short) * 3 >= len(items) * 2


@lru_cache(maxsize=4096)
def _label_terms(lead: str, heading: str) -> frozenset[str]:
    return frozenset(content_terms(f"{lead} {heading}"))


def enumerated(question: str) -> frozenset[str]:
    """Stems of what a "which …" question asks to list: the first two words after "which".

    "Hvilke fonde er med?" → {fond}; "Which social investments …" → {social, investment}.
    Without a part-of-speech tagger the noun may be either word ("fonde samarbejder").
    """
    match = _ENUMERATION.match(question)
    if not match:
        return frozenset()
    phrase: list[str] = []
    for word in words(question[match.end() :]):
        if word in STOPWORDS:
            if phrase:
                break
            continue
        phrase.append(word)
    return frozenset(stem(word) for word in phrase[:2])

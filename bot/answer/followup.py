"""Per-chat conversation memory and expansion of short follow-up questions.

"og diabetes?" after "Hvor mange unge skal ud af hjemløshed?" is searched with the earlier
question's words as weaker context. Memory holds only the last few (redacted) questions per
chat, in this process, and forgets them after a while of silence.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from bot.text import content_terms, words

# Openers that make a question lean on the previous one.
_CONNECTIVE = re.compile(
    r"^(og|men|så|samt|også|hvad med|hvad så med|hvordan med|end|and|but|also|what about|"
    r"how about|and what about|same for)\b",
    re.IGNORECASE,
)
_ANAPHORA = {
    "den",
    "det",
    "dem",
    "de",
    "han",
    "hun",
    "ham",
    "hende",
    "dens",
    "dets",
    "deres",
    "hans",
    "hendes",
    "dette",
    "denne",
    "disse",
    "der",
    "it",
    "its",
    "they",
    "them",
    "their",
    "he",
    "she",
    "him",
    "her",
    "this",
    "that",
    "those",
    "these",
    "there",
}
_MAX_FOLLOWUP_TERMS = 3


@dataclass
class Turn:
    """One remembered question (already redacted) and when it was asked."""

    text: str
    at: float


def is_follow_up(question: str) -> bool:
    """Short and leaning on something earlier (connective opener, pronoun, or one word)."""
    terms = content_terms(question)
    if len(terms) > _MAX_FOLLOWUP_TERMS:
        return False
    if _CONNECTIVE.match(question.strip()):
        return True
    if len(terms) <= 1:
        return True
    # "Hvad koster den?" leans on the last turn; "… Den Sociale Investeringsfond" does not.
    return len(terms) <= 2 and any(w in _ANAPHORA for w in words(question))


class ConversationMemory:
    """The last few questions per chat, in memory, expiring after ttl seconds."""

    def __init__(self, turns: int = 3, ttl_seconds: float = 1800) -> None:
        self._turns = turns
        self._ttl = ttl_seconds
        self._chats: dict[str, deque[Turn]] = {}
        self._lock = threading.Lock()

    def context_for(self, chat_id: str | None, question: str) -> str:
        """Words from the previous question when this one is a follow-up, else ''."""
        if chat_id is None or not is_follow_up(question):
            return ""
        with self._lock:
            history = self._live(chat_id)
            return history[-1].text if history else ""

    def remember(self, chat_id: str | None, searched_text: str) -> None:
        """Store what was searched (the expanded, redacted question)."""
        if chat_id is None:
            return
        with self._lock:
            history = self._chats.setdefault(chat_id, deque(maxlen=self._turns))
            history.append(Turn(searched_text, time.monotonic()))

    def forget(self, chat_id: str) -> None:
        """Drop a chat's memory (/ny)."""
        with self._lock:
            self._chats.pop(chat_id, None)

    def _live(self, chat_id: str) -> list[Turn]:
        now = time.monotonic()
        history = self._chats.get(chat_id)
        if not history:
            return []
        while history and now - history[0].at > self._ttl:
            history.popleft()
        if not history:
            self._chats.pop(chat_id, None)
        return list(history)

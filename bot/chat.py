"""Terminal chat: line editing and history (prompt_toolkit), `/ny` resets, `/kilder` lists sources."""

from __future__ import annotations

import sys

from bot.answer.core import Answerer
from bot.config import Settings

WELCOME = (
    "Spørg Rådet – spørg om Rådet for Sociale Investeringer i Aarhus Kommune.\n"
    "Kommandoer: /ny (start forfra), /kilder (kilderne), /quit (afslut)."
)
_CHAT_ID = "terminal"


def format_sources(answerer: Answerer) -> str:
    """The knowledge base's documents with dates, newest first."""
    lines = [f"Kilder (senest opdateret {answerer.retriever.refreshed_at or 'ukendt'}):"]
    for doc in answerer.sources():
        lines.append(f"  {doc['date'] or '----------'}  {doc['title']}  {doc['url']}")
    return "\n".join(lines)


def handle(answerer: Answerer, line: str) -> str | None:
    """One line of input to the text to print; None means quit."""
    command = line.strip().lower()
    if command in ("/quit", "/exit", "/afslut"):
        return None
    if command in ("/ny", "/new"):
        answerer.forget(_CHAT_ID)
        return "Samtalen er nulstillet."
    if command in ("/kilder", "/sources"):
        return format_sources(answerer)
    return answerer.ask(line, chat_id=_CHAT_ID).full_text()


def run_chat(settings: Settings) -> int:
    """Interactive loop; reads plain lines when stdin is not a terminal."""
    answerer = Answerer.started(settings)
    print(WELCOME)
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory

        # History lives in memory only: questions may contain personal data.
        session = PromptSession(history=InMemoryHistory())
        read = lambda: session.prompt("› ")  # noqa: E731
    else:
        read = lambda: input("› ")  # noqa: E731
    while True:
        try:
            line = read()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line.strip():
            continue
        reply = handle(answerer, line)
        if reply is None:
            return 0
        print(reply + "\n")

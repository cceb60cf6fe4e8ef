"""Terminal chat: line editing and history (prompt_toolkit), `/ny` resets, `/kilder` lists sources.

Like the Telegram bot, an answer may offer a reviewed answer the matcher was not sure enough to
serve on its own ("📌 … /ja"); `/ja` (or `/yes`) shows it, if it may still be served.
"""

from __future__ import annotations

import sys

from bot.answer.core import Answerer
from bot.answer.models import Answer
from bot.config import Settings
from bot.telegram.texts import t

WELCOME = (
    "Spørg Rådet – spørg om Rådet for Sociale Investeringer i Aarhus Kommune.\n"
    "Kommandoer: /ny (start forfra), /kilder (kilderne), /ja (vis et foreslået godkendt svar), "
    "/quit (afslut)."
)
_CHAT_ID = "terminal"
_OFFER = {
    "da": "📌 Der er et godkendt svar på: «{question}». Skriv /ja for at se det.",
    "en": "📌 There is a reviewed answer to: “{question}”. Type /yes to see it.",
}
_NO_OFFER = {
    "da": "Der er ikke noget foreslået svar lige nu. Stil gerne et spørgsmål.",
    "en": "There is no suggested answer right now. Please ask a question.",
}


def format_sources(answerer: Answerer) -> str:
    """The knowledge base's documents with dates, newest first."""
    lines = [f"Kilder (senest opdateret {answerer.retriever.refreshed_at or 'ukendt'}):"]
    for doc in answerer.sources():
        lines.append(f"  {doc['date'] or '----------'}  {doc['title']}  {doc['url']}")
    return "\n".join(lines)


class Chat:
    """One terminal conversation, and the reviewed answer its last answer offered."""

    def __init__(self, answerer: Answerer) -> None:
        self.answerer = answerer
        self.offer: dict | None = None  # {"id", "question", "language"}

    def handle(self, line: str) -> str | None:
        """One line of input to the text to print; None means quit."""
        command = line.strip().lower()
        if command in ("/quit", "/exit", "/afslut"):
            return None
        if command in ("/ny", "/new"):
            self.answerer.forget(_CHAT_ID)
            self.offer = None
            return "Samtalen er nulstillet."
        if command in ("/kilder", "/sources"):
            return format_sources(self.answerer)
        if command in ("/ja", "/yes"):
            return self._take_offer(command)
        return self._show(self.answerer.ask(line, chat_id=_CHAT_ID))

    def _take_offer(self, command: str) -> str:
        offer, self.offer = self.offer, None
        if offer is None:
            return _NO_OFFER["en" if command == "/yes" else "da"]
        answer = self.answerer.curated_by_id(offer["id"], offer["language"], _CHAT_ID)
        if answer is None:
            return t(offer["language"], "suggestion_gone")
        return self._show(answer)

    def _show(self, answer: Answer) -> str:
        text = answer.full_text()
        self.offer = None
        if answer.suggestion:
            self.offer = {**answer.suggestion, "language": answer.language}
            offer = _OFFER.get(answer.language, _OFFER["da"])
            text += "\n\n" + offer.format(question=answer.suggestion["question"])
        return text


def run_chat(settings: Settings) -> int:
    """Interactive loop; reads plain lines when stdin is not a terminal."""
    chat = Chat(Answerer.started(settings))
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
        reply = chat.handle(line)
        if reply is None:
            return 0
        print(reply + "\n")

"""Optional generative composer through any OpenAI-compatible endpoint (LlamaIndex OpenAILike).

The extractive pipeline still decides whether to answer at all; the LLM only rewrites an answer
from the same numbered sources. Before anything reaches a user the reply must pass checks:
at least one citation and every `[n]` in range; every number it states appears in a source it
cites; its language matches the question's. Links are replaced by tokens in the prompt so the
model cannot invent them; tokens are mapped back and anything else that looks like a link is
dropped. Any failure, timeout or HTTP error raises `LLMError`, and the caller falls back to the
extractive answer.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

from bot.config import Settings
from bot.errors import LLMError
from bot.language import detect

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_URL = re.compile(r"https?://[^\s)\]>]+")
_TOKEN = re.compile(r"⟨LINK(\d+)⟩")

SYSTEM = {
    "da": (
        "Du er Spørg Rådet, en assistent om Aarhus Kommunes Råd for Sociale Investeringer. "
        "Svar KUN ud fra de nummererede kilder. Skriv kort på dansk. Sæt kildens nummer i "
        "firkantede parenteser, fx [1], efter hver oplysning. Skriv ingen tal, navne eller links, "
        "som ikke står i kilderne. Står svaret ikke i kilderne, så sig det. Siger kilderne "
        "forskellige ting, så nævn begge med deres dato."
    ),
    "en": (
        "You are Spørg Rådet, an assistant about Aarhus Municipality's Council for Social "
        "Investments. Answer ONLY from the numbered sources. Write briefly in English (the sources "
        "may be in Danish). Put the source number in square brackets, e.g. [1], after each fact. "
        "Do not write numbers, names or links that are not in the sources. If the sources do not "
        "answer it, say so. If sources disagree, give both with their dates."
    ),
}
CONDENSE = (
    "Rewrite the follow-up question as one standalone question in the same language, using the "
    "previous question for context. Reply with the question only.\n"
    "Previous question: {previous}\nFollow-up: {question}\nStandalone question:"
)


@dataclass(frozen=True)
class Source:
    """A numbered source as the model sees it."""

    n: int
    title: str
    date: str
    url: str
    text: str


@dataclass(frozen=True)
class Generated:
    """A checked generated answer: text with [n] markers and the cited source numbers."""

    text: str
    cited: list[int]


class LLMComposer:
    """Talks to the configured endpoint and checks what comes back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stats: Counter[str] = Counter()
        self._llm = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.settings.llm_base_url and self.settings.llm_model)

    def _client(self):
        with self._lock:
            if self._llm is None:
                from llama_index.llms.openai_like import OpenAILike

                key = (
                    self.settings.llm_api_key.get_secret_value()
                    if self.settings.llm_api_key
                    else "none"
                )
                self._llm = OpenAILike(
                    model=self.settings.llm_model,
                    api_base=self.settings.llm_base_url,
                    api_key=key,
                    is_chat_model=True,
                    temperature=0.1,
                    max_tokens=500,
                    timeout=self.settings.llm_timeout_seconds,
                    max_retries=0,
                )
            return self._llm

    def _chat(self, system: str, user: str) -> str:
        """One streamed chat completion within the timeout; raises LLMError."""
        from llama_index.core.llms import ChatMessage

        client = self._client()  # the first call imports the OpenAI client: not part of the wait
        deadline = time.monotonic() + self.settings.llm_timeout_seconds
        try:
            text = ""
            stream = client.stream_chat(
                [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
            )
            for chunk in stream:
                text = chunk.message.content or ""
                if time.monotonic() > deadline:
                    raise LLMError("timeout")
            return text.strip()
        except LLMError:
            raise
        except Exception as exc:  # openai/httpx raise many kinds; all mean "no usable reply"
            name = exc.__class__.__name__
            reason = "timeout" if "timeout" in name.lower() else f"error:{name}"
            raise LLMError(reason) from exc

    def compose(self, question: str, language: str, sources: list[Source]) -> Generated:
        """A checked answer from the sources; LLMError(reason) when it cannot be trusted."""
        links = {}
        blocks = []
        for source in sources:
            text = _URL.sub(lambda m: _tokenise(m.group(0), links), source.text)
            head = f"[{source.n}] {source.title} ({source.date or 'udateret'})"
            if source.url:
                head += f" {_tokenise(source.url, links)}"
            blocks.append(f"{head}\n{text}")
        prompt = "Kilder:\n\n" + "\n\n".join(blocks) + f"\n\nSpørgsmål: {question}"
        try:
            reply = self._chat(SYSTEM[language], prompt)
            generated = check_reply(reply, language, sources, links)
        except LLMError as exc:
            self.stats[f"fallback:{exc}"] += 1
            log.warning("llm: falling back to the extractive answer (%s)", exc)
            raise
        self.stats["used"] += 1
        return generated

    def condense(self, question: str, previous: str) -> str:
        """A standalone version of a follow-up question; LLMError on failure."""
        reply = self._chat(
            "You rewrite questions.", CONDENSE.format(previous=previous, question=question)
        )
        line = reply.strip().splitlines()[0].strip() if reply.strip() else ""
        if not line or len(line) > 400:
            raise LLMError("bad condensed question")
        return line


def _tokenise(url: str, links: dict[str, str]) -> str:
    for token, known in links.items():
        if known == url:
            return token
    token = f"⟨LINK{len(links) + 1}⟩"
    links[token] = url
    return token


def _digits(value: str) -> str:
    return re.sub(r"[.,]", "", value)


def check_reply(
    reply: str, language: str, sources: list[Source], links: dict[str, str]
) -> Generated:
    """Apply the checks of the module docstring; returns the cleaned answer or raises LLMError."""
    if not reply:
        raise LLMError("empty reply")
    numbers = {s.n for s in sources}
    cited = [int(n) for n in _MARKER.findall(reply)]
    if not cited:
        raise LLMError("no citation")
    if any(n not in numbers for n in cited):
        raise LLMError("citation out of range")
    text = _TOKEN.sub(lambda m: links.get(m.group(0), ""), reply)
    known_urls = set(links.values())
    text = _URL.sub(lambda m: m.group(0) if m.group(0) in known_urls else "", text)
    cited_text = " ".join(s.text + " " + s.title + " " + s.date for s in sources if s.n in cited)
    available = {_digits(n) for n in _NUMBER.findall(cited_text)}
    without_markers = _MARKER.sub(" ", _URL.sub(" ", text))
    for number in _NUMBER.findall(without_markers):
        if _digits(number) not in available:
            raise LLMError(f"number not in sources: {number}")
    if detect(without_markers) != language:
        raise LLMError("wrong language")
    ordered = list(dict.fromkeys(cited))
    return Generated(text=re.sub(r"[ \t]+", " ", text).strip(), cited=ordered)

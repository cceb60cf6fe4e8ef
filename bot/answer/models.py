"""Data that crosses modules: the answer every face renders, and its citations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal[
    "answered",  # a cited answer
    "curated",  # a reviewed answer from knowledge/svar/ (see the `curated` field)
    "not_found",  # weak evidence or the material says it does not know: refused
    "empty",  # nothing to answer
    "too_long",  # over the length limit
    "noise",  # only emoji, symbols or invisible characters
    "injection",  # tries to change the bot's instructions
    "personal_data_request",  # asks for private data about people
    "unavailable",  # the index or the store cannot be reached
]


@dataclass
class Citation:
    """A numbered source under an answer."""

    n: int
    title: str
    url: str
    date: str
    file: str
    quote: str
    page: int | None = None
    section: str = ""


@dataclass
class Answer:
    """What a face renders. `text` holds the answer with `[n]` markers, without the sources."""

    question: str
    language: Literal["da", "en"]
    text: str
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    status: Status = "answered"
    notice: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    search_text: str = ""
    top_files: list[str] = field(default_factory=list)
    evidence: dict[str, float] = field(default_factory=dict)
    generated: bool = False
    curated: dict | None = None  # {"id", "question", "reviewed", "score"} for a curated reply
    # A reviewed answer that may be what was meant: {"id", "question", "score"} (see DESIGN 5)
    suggestion: dict | None = None
    features: Any = field(default=None, repr=False)  # the gate's inputs (evaluation reads them)

    def to_json(self) -> dict:
        """The JSON contract of `python -m bot ask --json` (DESIGN section 5)."""
        return {
            "question": self.question,
            "language": self.language,
            "answer": self.full_text(with_sources=False),
            "refused": self.refused,
            "status": self.status,
            "citations": [
                {
                    k: v
                    for k, v in asdict(c).items()
                    if k in ("n", "title", "url", "date", "file", "quote")
                }
                for c in self.citations
            ],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            **({"curated": self.curated} if self.curated is not None else {}),
            **({"suggestion": self.suggestion} if self.suggestion is not None else {}),
        }

    def full_text(self, with_sources: bool = True) -> str:
        """The answer as a person reads it in a terminal."""
        parts = [p for p in (self.notice, self.text) if p]
        if with_sources and self.citations:
            from bot.answer.messages import text_for

            lines = [text_for(self.language, "sources_heading")]
            lines += [format_source(c) for c in self.citations]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)


def format_source(citation: Citation) -> str:
    """'[1] Title (2024-04-17, s. 3) url'."""
    details = ", ".join(
        x for x in (citation.date, f"s. {citation.page}" if citation.page else "") if x
    )
    suffix = f" ({details})" if details else ""
    url = f" {citation.url}" if citation.url else ""
    return f"[{citation.n}] {citation.title}{suffix}{url}"

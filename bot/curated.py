"""Curated answers: reviewed answers to the common questions, kept as files in `knowledge/svar/`.

A curated file has YAML front matter and two sections:

    ---
    id: medlemmer                       # optional, default: the file name
    questions:
      da: [Hvem sidder i Rådet?, ...]   # question variants the answer fully answers
      en: [Who sits on the Council?, ...]
    sources: [medlemmer-og-perioder.md] # knowledge files; [n] in the answers is the n-th
    reviewed: 2026-12-01
    expires: 2027-12-01
    reviewer: Sekretariatet             # a role, not a person's name
    declined:                           # optional: questions it meets with a reviewed refusal
      da: [Hvad er rådets e-mail?, ...] # ("the material has no e-mail; ask here"), refused
    not:                                # optional: nearby questions it does NOT answer
      da: [Hvem sad i Rådet i 2019?, ...]
      en: [Who chairs the council in Odense?, ...]
    source_hashes: {...}                # written by `python ingest.py --review FILE`
    ---
    ## Dansk
    ... [1]
    ## English
    ... [1]

This module parses and validates such a file and turns it into the rows the curated collection
stores. Ingest (`bot.ingest.curated`) embeds the question variants; the answering core
(`bot.answer.curated`) matches questions against them and serves an entry only while it is
fresh: not expired, and every source in the index exactly as it was when the entry was reviewed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.errors import LoaderError
from bot.text import words

FOLDER = "svar"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there
LANGUAGES = ("da", "en")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_SECTION = re.compile(r"^##\s+(Dansk|English)\s*$", re.MULTILINE | re.IGNORECASE)
_SECTION_LANGUAGE = {"dansk": "da", "english": "en"}
_MARKER = re.compile(r"\[(\d+)\]")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,60}$")
# Renewing an expired entry at review keeps its review interval; this is the default interval.
DEFAULT_VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class CuratedEntry:
    """One reviewed answer, as written in its file."""

    id: str
    file: str  # relative to the knowledge folder, e.g. "svar/medlemmer.md"
    questions: dict[str, tuple[str, ...]]
    sources: tuple[str, ...]
    answers: dict[str, str]
    reviewed: date
    expires: date
    reviewer: str
    source_hashes: dict[str, str] = field(default_factory=dict)
    file_hash: str = ""
    # Nearby questions the answer does not answer ("not" in the front matter): a question
    # closer to one of these than to the variants falls through to the normal pipeline.
    not_questions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Questions on the entry's topic that the material cannot answer ("declined" in the front
    # matter): the answer says so and where to ask, and the reply counts as a refusal.
    declined: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def variants(self) -> list[tuple[str, str]]:
        """(language, question) for every question variant."""
        return [(lang, q) for lang in LANGUAGES for q in self.questions.get(lang, ())]

    def declined_variants(self) -> list[tuple[str, str]]:
        """(language, question) for every question the answer declines (a reviewed refusal)."""
        return [(lang, q) for lang in LANGUAGES for q in self.declined.get(lang, ())]

    def negatives(self) -> list[tuple[str, str]]:
        """(language, question) for every question the entry does not answer."""
        return [(lang, q) for lang in LANGUAGES for q in self.not_questions.get(lang, ())]

    def payload(self) -> str:
        """What the bot needs to serve the entry, as one JSON string (Chroma metadata)."""
        return json.dumps(
            {
                "id": self.id,
                "file": self.file,
                "questions": {k: list(v) for k, v in self.questions.items()},
                "declined": {k: list(v) for k, v in self.declined.items() if v},
                "sources": list(self.sources),
                "answers": self.answers,
                "reviewed": self.reviewed.isoformat(),
                "expires": self.expires.isoformat(),
                "reviewer": self.reviewer,
            },
            ensure_ascii=False,
            sort_keys=True,
        )


def entry_files(knowledge_dir: Path) -> list[Path]:
    """The curated answer files, sorted."""
    folder = knowledge_dir / FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.md") if p.is_file() and not p.name.startswith("."))


def is_curated_path(rel: Path | str) -> bool:
    """Whether a path relative to the knowledge folder is a curated answer (not a document)."""
    parts = Path(rel).parts
    return len(parts) > 1 and parts[0] == FOLDER


def split_file(text: str, name: str) -> tuple[dict[str, Any], str]:
    """Front matter and body of a curated file."""
    match = _FRONT_MATTER.match(text)
    if not match:
        raise LoaderError(f"{name}: no YAML front matter (--- ... ---) at the top")
    try:
        data = yaml.load(match.group(1), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise LoaderError(f"{name}: the front matter is not valid YAML ({exc})") from None
    except ValueError as exc:  # YAML parses 2026-13-45 as a date, then datetime refuses it
        raise LoaderError(
            f"{name}: a date in the front matter is not a real date ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise LoaderError(f"{name}: the front matter must be a mapping of keys")
    return data, text[match.end() :]


def parse_entry(text: str, rel: str, known_files: set[str]) -> CuratedEntry:
    """Validate a curated file; `known_files` are the knowledge files a source may name."""
    data, body = split_file(text, rel)
    stem = Path(rel).stem
    entry_id = str(data.get("id") or stem)
    if not _ID.match(entry_id):
        raise LoaderError(f"{rel}: id {entry_id!r} must be lower-case letters, digits and dashes")
    questions = _questions(data.get("questions"), rel)
    declined = _questions(data.get("declined") or {}, rel, "declined", required=False)
    not_questions = _questions(data.get("not") or {}, rel, "not", required=False)
    seen: dict[str, str] = {}
    for key, lists in (("questions", questions), ("declined", declined), ("not", not_questions)):
        for question in (q for qs in lists.values() for q in qs):
            earlier = seen.setdefault(question_key(question), key)
            if earlier != key:
                raise LoaderError(f"{rel}: {question!r} is both under {earlier}: and {key}:")
    sources = _sources(data.get("sources"), rel, known_files)
    reviewed = _date(data, "reviewed", rel)
    expires = _date(data, "expires", rel)
    if expires <= reviewed:
        raise LoaderError(f"{rel}: expires ({expires}) must be after reviewed ({reviewed})")
    reviewer = data.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise LoaderError(f"{rel}: reviewer (a role, e.g. 'Sekretariatet') is missing")
    answers = _answers(body, rel, len(sources))
    hashes = data.get("source_hashes") or {}
    if not isinstance(hashes, dict):
        raise LoaderError(f"{rel}: source_hashes must be a mapping (written by --review)")
    return CuratedEntry(
        id=entry_id,
        file=rel,
        questions=questions,
        sources=sources,
        answers=answers,
        reviewed=reviewed,
        expires=expires,
        reviewer=reviewer.strip(),
        source_hashes={str(k): str(v) for k, v in hashes.items()},
        file_hash=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        not_questions=not_questions,
        declined=declined,
    )


def question_key(text: str) -> str:
    """A question's words, lower-cased, without punctuation: "Hvem sidder i Rådet?" and
    "hvem sidder i rådet" are the same question (a variant matched word for word)."""
    return " ".join(words(text))


def _questions(
    value: object, rel: str, key: str = "questions", required: bool = True
) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise LoaderError(f"{rel}: {key} must list questions under da: and en:")
    out: dict[str, tuple[str, ...]] = {}
    for lang in LANGUAGES:
        items = value.get(lang) or []
        if not isinstance(items, list) or not all(isinstance(q, str) and q.strip() for q in items):
            raise LoaderError(f"{rel}: {key}.{lang} must be a list of questions")
        out[lang] = tuple(q.strip() for q in items)
        if required and not out[lang]:
            raise LoaderError(f"{rel}: {key}.{lang} needs at least one question variant")
    unknown = sorted(set(value) - set(LANGUAGES))
    if unknown:
        raise LoaderError(f"{rel}: {key} has unknown language(s) {', '.join(unknown)}")
    return out


def _sources(value: object, rel: str, known_files: set[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise LoaderError(f"{rel}: sources must list the knowledge files the answer rests on")
    missing = [s for s in value if s not in known_files]
    if missing:
        raise LoaderError(
            f"{rel}: source(s) not in the knowledge base: {', '.join(missing)} (name files "
            "relative to the knowledge folder, e.g. medlemmer-og-perioder.md)"
        )
    if len(set(value)) != len(value):
        raise LoaderError(f"{rel}: a source is listed twice")
    return tuple(value)


def _date(data: dict, key: str, rel: str) -> date:
    value = data.get(key)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise LoaderError(f"{rel}: {key} must be a date such as 2026-12-01 (got {value!r})")


def _answers(body: str, rel: str, n_sources: int) -> dict[str, str]:
    heads = list(_SECTION.finditer(body))
    answers: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        answers[_SECTION_LANGUAGE[head.group(1).lower()]] = body[head.end() : end].strip()
    for lang, title in (("da", "## Dansk"), ("en", "## English")):
        if not answers.get(lang):
            raise LoaderError(f"{rel}: the answer section {title!r} is missing or empty")
        markers = [int(n) for n in _MARKER.findall(answers[lang])]
        if not markers:
            raise LoaderError(f"{rel}: the {title!r} answer cites no source ([1], [2], ...)")
        wrong = sorted({n for n in markers if not 1 <= n <= n_sources})
        if wrong:
            raise LoaderError(
                f"{rel}: marker(s) {', '.join(f'[{n}]' for n in wrong)} in {title!r} have no "
                f"source ({n_sources} listed)"
            )
    return answers


def problems(entry: CuratedEntry, current: dict[str, str | None], today: date) -> list[str]:
    """Why an entry needs review (empty when it may be served).

    `current` maps each source to its content hash now (`None`: gone or unreadable).
    """
    found = []
    if not entry.source_hashes:
        found.append("not reviewed yet: run `python ingest.py --review " + entry.file + "`")
    for source in entry.sources:
        now = current.get(source)
        if now is None:
            found.append(f"source {source} is no longer in the knowledge base or cannot be read")
        elif entry.source_hashes and entry.source_hashes.get(source) != now:
            found.append(f"source {source} changed after the review on {entry.reviewed}")
    if entry.expires < today:
        found.append(f"expired on {entry.expires}")
    return found


def reviewed_text(text: str, rel: str, hashes: dict[str, str], today: date) -> tuple[str, date]:
    """The file's text after a review today: new date and hashes; an expired entry is renewed
    for its previous review interval. Returns the text and the expiry date."""
    data, body = split_file(text, rel)
    reviewed, expires = data.get("reviewed"), data.get("expires")
    if not (isinstance(reviewed, date) and isinstance(expires, date)) or expires <= today:
        interval = (
            expires - reviewed
            if isinstance(reviewed, date) and isinstance(expires, date) and expires > reviewed
            else DEFAULT_VALIDITY
        )
        data["expires"] = today + interval
    data["reviewed"] = today
    data["source_hashes"] = dict(sorted(hashes.items()))
    front = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    return f"---\n{front}---\n{body}", data["expires"]

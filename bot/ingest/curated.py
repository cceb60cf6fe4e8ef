"""Curated answers at ingest: load and validate `knowledge/svar/*.md`, record reviews, and keep
the curated collection (one row per question variant) in step with the files.

An entry is stored with the document hash of each source as it is indexed in this run, but
only when no review is due; the bot serves an entry only while the index holds exactly those
document versions (`bot.answer.curated`). A source that changes, disappears or an entry that
expires is therefore never served, whatever order ingest writes in, and ingest names it as
needing review (exit status 1).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from bot.config import Settings
from bot.curated import (
    CuratedEntry,
    entry_files,
    is_curated_path,
    parse_entry,
    problems,
    question_key,
    reviewed_text,
)
from bot.embedding import Embedder
from bot.errors import LoaderError
from bot.ingest.loaders import SourceDocument, discover, load_document, read_manifest
from bot.store import KnowledgeStore

log = logging.getLogger(__name__)


def content_hash(doc: SourceDocument) -> str:
    """What a review vouches for: the document's text and stable metadata (not chunking)."""
    return doc.digest()


def known_files(knowledge_dir: Path) -> set[str]:
    """Knowledge files a curated entry may name as a source (paths relative to the folder)."""
    files, _ = discover([knowledge_dir], knowledge_dir)
    rels = (path.relative_to(knowledge_dir) for path in files)
    return {rel.as_posix() for rel in rels if not is_curated_path(rel)}


def load_entries(knowledge_dir: Path) -> tuple[list[CuratedEntry], list[dict[str, str]]]:
    """Every valid curated entry, and a failure (file, reason) for each invalid one."""
    known = known_files(knowledge_dir)
    entries, failures, seen = [], [], {}
    asks: dict[str, str] = {}  # question key -> the file that asks it
    for path in entry_files(knowledge_dir):
        rel = path.relative_to(knowledge_dir).as_posix()
        try:
            entry = parse_entry(path.read_text(encoding="utf-8"), rel, known)
        except (LoaderError, UnicodeDecodeError, OSError) as exc:
            reason = str(exc) if isinstance(exc, LoaderError) else f"{rel}: {exc}"
            failures.append({"document": rel, "reason": reason})
            continue
        if entry.id in seen:
            failures.append(
                {
                    "document": rel,
                    "reason": f"{rel}: id {entry.id!r} is also used by {seen[entry.id]}",
                }
            )
            continue
        # A question served word for word must belong to one entry only.
        asked = {question_key(q): q for _, q in entry.variants() + entry.declined_variants()}
        clash = next((key for key in asked if key in asks), None)
        if clash is not None:
            reason = f"{rel}: {asked[clash]!r} is already a question of {asks[clash]}"
            failures.append({"document": rel, "reason": reason})
            continue
        asks.update(dict.fromkeys(asked, rel))
        seen[entry.id] = rel
        entries.append(entry)
    return entries, failures


@dataclass
class SourceState:
    """A source document as it is now: its review hash and its indexed document hash."""

    content: str | None
    indexed: str | None


def source_states(
    settings: Settings,
    names: set[str],
    docs: dict[str, tuple[SourceDocument, str]],
    failed: set[str],
) -> dict[str, SourceState]:
    """The current state of each named source: from this run's documents, else loaded now."""
    manifest = None
    states: dict[str, SourceState] = {}
    for name in sorted(names):
        if name in failed:
            states[name] = SourceState(None, None)
            continue
        if name in docs:
            doc, digest = docs[name]
            states[name] = SourceState(content_hash(doc), digest)
            continue
        path = settings.knowledge_dir / name
        if not path.is_file():
            states[name] = SourceState(None, None)
            continue
        from bot.ingest.pipeline import document_hash

        manifest = manifest if manifest is not None else read_manifest(settings.knowledge_dir)
        try:
            doc = load_document(path, settings.knowledge_dir, manifest, settings.max_document_bytes)
        except (LoaderError, OSError, ValueError):
            states[name] = SourceState(None, None)
            continue
        states[name] = SourceState(content_hash(doc), document_hash(doc, settings))
    return states


def review(settings: Settings, paths: list[Path], today: date | None = None) -> list[str]:
    """Record a review of curated files: today's date and each source's content hash.

    Returns one line per file for the person reviewing. Raises LoaderError for an invalid file
    (nothing is written for it).
    """
    today = today or date.today()
    known = known_files(settings.knowledge_dir)
    lines = []
    for path in paths:
        rel = path.resolve().relative_to(settings.knowledge_dir.resolve()).as_posix()
        text = path.read_text(encoding="utf-8")
        entry = parse_entry(text, rel, known)
        states = source_states(settings, set(entry.sources), {}, set())
        unreadable = [s for s, st in states.items() if st.content is None]
        if unreadable:
            raise LoaderError(f"{rel}: source(s) cannot be read: {', '.join(unreadable)}")
        hashes = {s: states[s].content or "" for s in entry.sources}
        new_text, expires = reviewed_text(text, rel, hashes, today)
        path.write_text(new_text, encoding="utf-8")
        lines.append(
            f"Reviewed {rel}: {len(hashes)} source(s) recorded, reviewed {today}, "
            f"expires {expires}."
        )
    return lines


@dataclass
class CuratedSync:
    """What syncing the curated collection did."""

    entries: int = 0
    serving: int = 0
    embedded: int = 0
    changed: bool = False


def sync(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    docs: dict[str, tuple[SourceDocument, str]],
    failed: set[str],
    report_failures: list[dict[str, str]],
    needs_review: list[dict[str, str]],
    *,
    dry_run: bool = False,
    rebuild: bool = False,
    today: date | None = None,
) -> CuratedSync:
    """Validate every curated file, name those due for review, and update the collection."""
    today = today or date.today()
    entries, failures = load_entries(settings.knowledge_dir)
    report_failures.extend(failures)
    states = source_states(settings, {s for e in entries for s in e.sources}, docs, failed)
    result = CuratedSync(entries=len(entries))
    rows: dict[str, tuple[list[str], list[str], list[dict]]] = {}
    for entry in entries:
        due = problems(entry, {s: states[s].content for s in entry.sources}, today)
        for reason in due:
            needs_review.append({"entry": entry.file, "reason": reason})
        indexed = {} if due else {s: states[s].indexed or "" for s in entry.sources}
        result.serving += not due
        ids, texts, metas = [], [], []
        # One row per question variant (embedded as a query) and one per answer language
        # (embedded as a passage): the matcher compares a question with both.
        pieces = [("question", lang, q) for lang, q in entry.variants()]
        pieces += [("declined", lang, q) for lang, q in entry.declined_variants()]
        pieces += [("negative", lang, q) for lang, q in entry.negatives()]
        pieces += [("answer", lang, _plain(entry.answers[lang])) for lang in sorted(entry.answers)]
        pieces += [
            ("sentence", lang, sentence)
            for lang in sorted(entry.answers)
            for sentence in _sentences(entry.answers[lang])
        ]
        for i, (kind, lang, text) in enumerate(pieces):
            ids.append(f"{entry.id}#{i:03d}")
            texts.append(text)
            meta = {
                "entry": entry.id,
                "kind": kind,
                "language": lang,
                "file_hash": entry.file_hash,
                "indexed": json.dumps(indexed, sort_keys=True),
            }
            if i == 0:  # the answer itself travels once per entry, not with every row
                meta["payload"] = entry.payload()
            metas.append(meta)
        rows[entry.id] = (ids, texts, metas)
    if dry_run:
        return result
    target = store.curated_answers()
    if rebuild:
        target.reset()
    keep = {Path(f["document"]).stem for f in failures}  # an invalid file keeps its old rows
    stored = _stored(target)
    model = f"{embedder.backend}/{embedder.model}"
    if target.exists() and target.info().get("embedding_model") not in (None, model):
        target.reset()
        stored = {}
    for entry_id, (ids, texts, metas) in rows.items():
        old = stored.get(entry_id, {})
        same_file = old and all(m["file_hash"] == metas[0]["file_hash"] for m in old.values())
        if same_file and set(old) == set(ids):
            # Chroma merges metadata on update, so only the keys written here are compared.
            if any({k: old[i].get(k) for k in m} != m for i, m in zip(ids, metas, strict=True)):
                target.update_metadatas(ids, metas)
                result.changed = True
            continue
        target.upsert(ids, _embed(embedder, texts, metas), texts, metas)
        leftovers = [i for i in old if i not in ids]
        if leftovers:
            target.delete(leftovers)
        result.embedded += len(ids)
        result.changed = True
    gone = [i for e, group in stored.items() if e not in rows and e not in keep for i in group]
    if gone:
        target.delete(gone)
        result.changed = True
    if result.changed:
        target.record(embedding_model=model)
    log.info(
        "ingest: curated answers: %d valid, %d serving, %d variants embedded",
        result.entries,
        result.serving,
        result.embedded,
    )
    return result


def _embed(embedder: Embedder, texts: list[str], metas: list[dict]) -> np.ndarray:
    """Question variants (and the questions an entry does not answer) as queries, answers as
    passages (the e5 convention)."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    asked = ("question", "declined", "negative")
    answers = [i for i, m in enumerate(metas) if m["kind"] not in asked]
    for i, meta in enumerate(metas):
        if meta["kind"] in asked:
            vectors[i] = embedder.embed_query(texts[i])
    if answers:
        vectors[answers] = embedder.embed_passages([texts[i] for i in answers])
    return vectors


def _plain(answer: str) -> str:
    """An answer's text without its [n] markers and list dashes (what is embedded)."""
    text = re.sub(r"\s*\[\d+\]", "", answer)
    return re.sub(r"^\s*-\s+", "", text, flags=re.MULTILINE)


def _sentences(answer: str) -> list[str]:
    """The sentences and list items of an answer, without markers (each one a fact)."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+", _plain(answer))
    return [p.strip() for p in pieces if len(p.split()) >= 3]


def _stored(target: KnowledgeStore) -> dict[str, dict[str, dict]]:
    """Stored rows by entry id, then row id."""
    if not target.exists():
        return {}
    out: dict[str, dict[str, dict]] = {}
    for row_id, meta in target.metadatas().items():
        out.setdefault(meta.get("entry", ""), {})[row_id] = meta
    return out

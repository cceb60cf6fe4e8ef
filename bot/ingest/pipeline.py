"""Incremental ingest: compare documents with the index, embed only what changed.

Order of writes for a changed document: new chunks are upserted first, then the old
generation is deleted. A crash between the two leaves both generations (answers still work);
the next run sees the stale generation and deletes it. A document that fails to load keeps
whatever the index already had for it.

With `fetch=True` the web sources listed in `sources.csv` are downloaded too (see `crawl`). A
page that answers "not modified", fails or is gone for the first time is kept as the index has
it: its id goes into the plan's keep set, so it is neither re-embedded nor deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.config import Settings
from bot.curated import is_curated_path
from bot.embedding import Embedder, make_embedder
from bot.errors import (
    ConfigError,
    DataDirNotWritable,
    IngestLocked,
    KnowledgeDirMissing,
    LoaderError,
)
from bot.ingest import curated, fingerprint, vector_cache
from bot.ingest.chunking import CHUNKER_VERSION, chunk_document, chunk_metadata
from bot.ingest.crawl import (
    fetch_sources,
    is_web_id,
    load_state,
    save_state,
    state_path,
    web_sources,
)
from bot.ingest.loaders import SourceDocument, discover, load_document, read_manifest
from bot.store import KnowledgeStore, remove_orphan_segments

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    # Texts whose vectors came from the vector cache, and texts embedded anew.
    vectors_reused: int = 0
    vectors_embedded: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    # Curated answers (knowledge/svar/) that must be reviewed before they are served again.
    needs_review: list[dict[str, str]] = field(default_factory=list)
    curated: dict[str, int] = field(default_factory=dict)
    # Leftover vector-index folders of dropped collections that were deleted.
    cleaned: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    # Web sources (only with fetch): URLs per outcome; failed and gone ones are in failures too.
    fetch: bool = False
    fetched: list[str] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    fetch_failed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every document was indexed, 1 when some failed or an answer needs review."""
        return 1 if self.failures or self.needs_review else 0

    def to_dict(self) -> dict:
        return {**asdict(self), "exit_code": self.exit_code}


@dataclass(frozen=True)
class Plan:
    """Documents sorted by what must happen to them."""

    new: list[tuple[SourceDocument, str]]
    changed: list[tuple[SourceDocument, str]]
    unchanged: list[str]
    removed: list[str]
    stale_ids: dict[str, list[str]]


def document_hash(doc: SourceDocument, settings: Settings) -> str:
    """Content hash over text, stable metadata and chunker settings (not fetch times)."""
    return doc.digest([CHUNKER_VERSION, settings.chunk_max_words, settings.chunk_overlap_words])


@contextmanager
def ingest_lock(data_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """One ingest at a time per DATA_DIR; waits up to wait_seconds, then IngestLocked."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = (data_dir / "ingest.lock").open("a+")
    except OSError as exc:
        raise DataDirNotWritable(
            f"DATA_DIR {data_dir} cannot be written ({exc.strerror}). Point DATA_DIR at a "
            "writable folder."
        ) from exc
    deadline = time.monotonic() + wait_seconds
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IngestLocked(
                        "Another ingest is running on this knowledge base; wait for it to "
                        "finish and try again."
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resolve_scope(settings: Settings, paths: list[Path] | None) -> list[Path]:
    knowledge = settings.knowledge_dir
    if not knowledge.is_dir():
        raise KnowledgeDirMissing(
            f"The knowledge folder {knowledge} does not exist. Create it or set KNOWLEDGE_DIR."
        )
    if not paths:
        return [knowledge]
    scope = []
    for path in paths:
        if not path.exists():
            raise KnowledgeDirMissing(f"{path} does not exist.")
        if not path.resolve().is_relative_to(knowledge.resolve()):
            raise ConfigError(f"{path} is not inside the knowledge folder {knowledge}.")
        scope.append(path)
    return scope


def _in_scope(
    doc_id: str, settings: Settings, scope: list[Path], fetch: bool, full: bool = True
) -> bool:
    """Whether this run may delete a stored document: web pages only when fetching, uploads
    only in a full run (which reads the uploads folder)."""
    if is_web_id(doc_id):
        return fetch
    if is_upload_id(doc_id):
        return full
    root = settings.knowledge_dir.resolve()
    target = (root / doc_id).resolve()
    return any(target == s.resolve() or target.is_relative_to(s.resolve()) for s in scope)


def load_all(
    settings: Settings, scope: list[Path], report: IngestReport, full: bool = False
) -> dict[str, tuple[SourceDocument, str]]:
    """Load every file in scope (a full run: and the uploads); failures and warnings go to the
    report."""
    files, skipped = discover(scope, settings.knowledge_dir)
    # Curated answers are not documents to quote from: bot.ingest.curated loads them.
    files = [f for f in files if not is_curated_path(f.relative_to(settings.knowledge_dir))]
    report.warnings.extend(skipped)
    manifest = read_manifest(settings.knowledge_dir, report.warnings)
    docs: dict[str, tuple[SourceDocument, str]] = {}
    for path in files:
        try:
            doc = load_document(path, settings.knowledge_dir, manifest, settings.max_document_bytes)
        except (LoaderError, OSError, ValueError) as exc:
            # One bad file fails alone, named; the others are still indexed (exit status 1).
            rel = path.relative_to(settings.knowledge_dir).as_posix()
            reason = str(exc) if isinstance(exc, LoaderError) else f"{path.name}: {exc}"
            report.failures.append({"document": rel, "reason": reason})
            log.warning("ingest: %s", reason)
            continue
        report.warnings.extend(doc.warnings)
        docs[doc.doc_id] = (doc, document_hash(doc, settings))
    if full:
        docs.update(load_uploads(settings, report))
    return docs


UPLOAD_PREFIX = "upload:"


def is_upload_id(doc_id: str) -> bool:
    """Whether a document id names a document staff sent the bot (DATA_DIR/uploads)."""
    return doc_id.startswith(UPLOAD_PREFIX)


def load_uploads(settings: Settings, report: IngestReport) -> dict[str, tuple[SourceDocument, str]]:
    """The documents in the uploads folder, with the metadata the bot recorded for them."""
    root = settings.uploads_path
    if not root.is_dir():
        return {}
    files, skipped = discover([root], root)
    report.warnings.extend(skipped)
    manifest = read_manifest(root, report.warnings)
    docs: dict[str, tuple[SourceDocument, str]] = {}
    for path in files:
        try:
            doc = load_document(
                path, root, manifest, settings.max_document_bytes, id_prefix=UPLOAD_PREFIX
            )
        except (LoaderError, OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, LoaderError) else f"{path.name}: {exc}"
            report.failures.append({"document": UPLOAD_PREFIX + path.name, "reason": reason})
            continue
        report.warnings.extend(doc.warnings)
        docs[doc.doc_id] = (doc, document_hash(doc, settings))
    return docs


def make_plan(
    docs: dict[str, tuple[SourceDocument, str]],
    stored: dict,
    keep: set[str],
    in_scope: Callable[[str], bool],
) -> Plan:
    """Decide per document: new, changed, unchanged, removed; find stale generations.

    `keep` holds ids that were not loaded but must stay as stored (failed files, web pages
    that were not modified, failed or are not yet confirmed gone).
    """
    new, changed, unchanged, stale = [], [], [], {}
    for doc_id, (doc, digest) in sorted(docs.items()):
        versions = stored.get(doc_id)
        if versions is None or digest not in versions.by_hash:
            (changed if versions else new).append((doc, digest))
            continue
        unchanged.append(doc_id)
        old = [i for h, ids in versions.by_hash.items() if h != digest for i in ids]
        if old:
            stale[doc_id] = old
    removed = [
        doc_id
        for doc_id in sorted(stored)
        if doc_id not in docs and doc_id not in keep and in_scope(doc_id)
    ]
    return Plan(new, changed, unchanged, removed, stale)


def index_key(settings: Settings) -> str:
    """The chunker settings a stored web page was embedded with (part of its document hash)."""
    return f"{CHUNKER_VERSION}/{settings.chunk_max_words}/{settings.chunk_overlap_words}"


@dataclass
class WebBatch:
    """The outcome of fetching the web sources: documents, ids to keep, state to save."""

    docs: dict[str, tuple[SourceDocument, str]] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)
    state: dict[str, dict] = field(default_factory=dict)


def load_web(
    settings: Settings, stored: dict, report: IngestReport, *, prune: bool = False
) -> WebBatch:
    """Fetch every web source in the manifest; outcomes and failures go to the report."""
    sources, warnings = web_sources(settings.knowledge_dir)
    report.warnings.extend(warnings)
    # Pages staff added from chat (/tilfoej) are listed in the uploads folder's manifest.
    added, warnings = web_sources(settings.uploads_path)
    report.warnings.extend(f"uploads/{w}" for w in warnings)
    for url, row in added.items():
        sources.setdefault(url, row)
    key = index_key(settings)

    def revalidate(url: str, entry: dict) -> bool:
        # A 304 is only useful if the index holds exactly the version the state describes.
        versions = stored.get(url)
        has_validators = bool(entry.get("etag") or entry.get("last_modified"))
        return bool(
            has_validators
            and versions is not None
            and entry.get("doc_hash") in versions.by_hash
            and entry.get("index_key") == key
        )

    batch = WebBatch()
    outcomes = fetch_sources(
        settings, sources, load_state(state_path(settings)), revalidate, prune=prune
    )
    for outcome in outcomes:
        url = outcome.url
        if outcome.entry is not None:
            batch.state[url] = outcome.entry
        if outcome.status == "fetched" and outcome.document is not None:
            report.fetched.append(url)
            report.warnings.extend(outcome.document.warnings)
            batch.docs[url] = (outcome.document, document_hash(outcome.document, settings))
            continue
        if outcome.status == "not_modified":
            report.not_modified.append(url)
        else:
            (report.gone if outcome.status == "gone" else report.fetch_failed).append(url)
            report.failures.append({"document": url, "reason": outcome.reason})
        if not outcome.remove:
            batch.keep.add(url)
    return batch


def _save_web_state(settings: Settings, batch: WebBatch) -> None:
    """Remember validators and the document hash that is now in the index for each URL."""
    key = index_key(settings)
    for url, (_, digest) in batch.docs.items():
        batch.state[url].update(doc_hash=digest, index_key=key)
    save_state(state_path(settings), batch.state)


BUILD_INCOMPLETE, BUILD_COMPLETE = "incomplete", "complete"


def _drop_interrupted_rebuild(store: KnowledgeStore, report: IngestReport, dry_run: bool) -> None:
    """Remove the half-built collection a killed `--rebuild` left beside the live one."""
    orphan = store.sibling(f"{store.name}-rebuild")
    if not orphan.exists():
        return
    if not dry_run:
        orphan.reset()
    report.warnings.append(
        f"removed the half-built collection {orphan.name!r} of an interrupted --rebuild"
    )


def _refuse_rebuild_without_fetch(store: KnowledgeStore) -> None:
    """A rebuild re-embeds from sources; web pages would be lost without fetching them."""
    pages = [doc_id for doc_id in store.doc_versions() if is_web_id(doc_id)]
    if pages:
        raise ConfigError(
            f"The index holds {len(pages)} web page(s) that a rebuild would lose. Run "
            "`python ingest.py --rebuild --fetch` so they are downloaded and embedded again."
        )


def run_ingest(
    settings: Settings,
    paths: list[Path] | None = None,
    *,
    rebuild: bool = False,
    dry_run: bool = False,
    fetch: bool = False,
    prune: bool = False,
    store: KnowledgeStore | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[int], Progress] | None = None,
    lock_wait_seconds: float = 0.0,
) -> IngestReport:
    """Bring the index in step with the knowledge folder (and, with fetch, the web sources)."""
    started = time.perf_counter()
    if paths and fetch:
        raise ConfigError("--fetch refreshes every web source; run it without file arguments.")
    if prune and not fetch:
        raise ConfigError("--prune only applies together with --fetch.")
    scope = _resolve_scope(settings, paths)
    report = IngestReport(dry_run=dry_run, fetch=fetch)
    plain = not (paths or rebuild or fetch)
    with ingest_lock(settings.data_dir, lock_wait_seconds), contextlib.ExitStack() as cleanup:
        last = fingerprint.matches(settings) if plain else None
        if last is not None:
            report.unchanged, report.curated = last["unchanged"], last["curated"]
            report.warnings = list(last.get("warnings", []))  # said again, like a full run
            report.seconds = round(time.perf_counter() - started, 2)
            log.info("ingest: nothing changed since the last run (%.2f s)", report.seconds)
            return report
        if not dry_run:
            fingerprint.forget(settings)
        store = store or KnowledgeStore.open(settings)
        embedder = embedder or make_embedder(settings)
        cached = None if dry_run else vector_cache.open_for(settings.data_dir, embedder)
        if cached is not None:
            cleanup.callback(cached.cache.close)
            embedder = cached
        target = store
        if rebuild and not fetch:
            _refuse_rebuild_without_fetch(store)
        if rebuild and not dry_run:
            # Build beside the live collection; the swap at the end is the only gap.
            target = store.sibling(f"{store.name}-rebuild")
            target.reset()
        else:
            store.check_embedder(embedder.backend, embedder.model, None)
            _drop_interrupted_rebuild(store, report, dry_run)

        docs = load_all(settings, scope, report, full=not paths)
        keep = {f["document"] for f in report.failures}
        stored = {} if rebuild else target.doc_versions()
        web = load_web(settings, stored, report, prune=prune) if fetch else None
        if web is not None:
            docs.update(web.docs)
            keep |= web.keep
        full = not paths
        plan = make_plan(docs, stored, keep, lambda d: _in_scope(d, settings, scope, fetch, full))
        report.added = [d.doc_id for d, _ in plan.new]
        report.updated = [d.doc_id for d, _ in plan.changed]
        # A page that answered 304 is as unchanged as a file whose hash matched.
        report.unchanged = plan.unchanged + report.not_modified
        report.deleted = plan.removed
        report.repaired = sorted(plan.stale_ids)
        if dry_run:
            _sync_curated(settings, store, embedder, docs, report, dry_run=True)
        else:
            # Marked before writing and cleared after: a killed build is visible in `status`
            # and the retriever's log, and the next run finishes it (unwritten documents are
            # still new; half-written ones are repaired).
            work = plan.new or plan.changed or plan.removed or plan.stale_ids
            if work and target.info().get("build") != BUILD_INCOMPLETE:
                target.record(build=BUILD_INCOMPLETE)
            _apply(plan, stored, target, embedder, settings, report, progress)
            answers = _sync_curated(settings, store, embedder, docs, report, rebuild=rebuild)
            changed = work or rebuild or answers.changed
            if changed or not target.info().get("embedding_model"):
                target.mark_refreshed(embedder.backend, embedder.model, embedder.dimension)
            if target.info().get("build") != BUILD_COMPLETE:
                target.record(build=BUILD_COMPLETE)
            if rebuild:
                store.replace_with(target)
            if web is not None:
                # Only after the index holds what the state describes (see load_web).
                _save_web_state(settings, web)
            report.cleaned = remove_orphan_segments(settings)
            if cached is not None:
                report.vectors_reused, report.vectors_embedded = cached.reused, cached.embedded
                cached.cache.prune()
            if plain and not (report.failures or report.needs_review):
                indexed = sorted(report.added + report.updated + report.unchanged)
                summary = {"unchanged": indexed, "curated": report.curated}
                fingerprint.save(settings, {**summary, "warnings": report.warnings})
    report.seconds = round(time.perf_counter() - started, 2)
    log.info(
        "ingest: %d added, %d updated, %d unchanged, %d deleted, %d failed in %.1f s",
        len(report.added),
        len(report.updated),
        len(report.unchanged),
        len(report.deleted),
        len(report.failures),
        report.seconds,
    )
    if fetch:
        log.info(
            "ingest: web sources: %d fetched, %d not modified, %d failed, %d gone",
            len(report.fetched),
            len(report.not_modified),
            len(report.fetch_failed),
            len(report.gone),
        )
    return report


def _sync_curated(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    docs: dict[str, tuple[SourceDocument, str]],
    report: IngestReport,
    **options: bool,
) -> curated.CuratedSync:
    failed = {f["document"] for f in report.failures}
    result = curated.sync(
        settings, store, embedder, docs, failed, report.failures, report.needs_review, **options
    )
    report.curated = {"entries": result.entries, "serving": result.serving}
    return result


def _apply(
    plan: Plan,
    stored: dict,
    store: KnowledgeStore,
    embedder: Embedder,
    settings: Settings,
    report: IngestReport,
    progress: Callable[[int], Progress] | None,
) -> None:
    """Write new generations, then delete old generations, removed documents and leftovers."""
    work = []
    for doc, digest in plan.new + plan.changed:
        chunks = chunk_document(doc, settings.chunk_max_words, settings.chunk_overlap_words)
        if len(chunks) > settings.max_document_units:
            reason = (
                f"{doc.metadata.get('file', doc.doc_id)}: {len(chunks)} quotable units, more than "
                f"the limit of {settings.max_document_units} (MAX_DOCUMENT_UNITS); not indexed"
            )
            report.failures.append({"document": doc.doc_id, "reason": reason})
            for names in (report.added, report.updated):
                if doc.doc_id in names:
                    names.remove(doc.doc_id)
            log.warning("ingest: %s", reason)
            continue
        work.append((doc, digest, chunks))
    total = sum(len(chunks) for _, _, chunks in work)
    tick = progress(total) if (progress and total) else None
    if work:
        store.check_embedder(embedder.backend, embedder.model, embedder.dimension)
    for doc, digest, chunks in work:
        title = doc.metadata["title"]
        vectors = embedder.embed_passages([c.embed_text(title) for c in chunks])
        ids = [f"{doc.doc_id}#{digest}#{i:04d}" for i in range(len(chunks))]
        indexed_at = datetime.now(UTC).isoformat(timespec="microseconds")
        metas = [chunk_metadata(doc, c, digest, i, indexed_at) for i, c in enumerate(chunks)]
        store.upsert(ids, vectors, [c.text for c in chunks], metas)
        report.chunks_written += len(ids)
        if tick:
            tick(len(ids))
        crash_point("after-upsert")
        old = stored.get(doc.doc_id)
        if old:
            stale = [i for h, group in old.by_hash.items() if h != digest for i in group]
            store.delete(stale)
            report.chunks_deleted += len(stale)
    for doc_id in plan.removed:
        ids = [i for group in stored[doc_id].by_hash.values() for i in group]
        store.delete(ids)
        report.chunks_deleted += len(ids)
    for ids in plan.stale_ids.values():
        store.delete(ids)
        report.chunks_deleted += len(ids)


def crash_point(name: str) -> None:
    """Test hook: kill the process here when SPOERG_CRASH_AT names this point."""
    if os.environ.get("SPOERG_CRASH_AT") == name:
        os.kill(os.getpid(), 9)

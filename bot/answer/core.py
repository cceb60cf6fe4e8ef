"""The answering core: guard → follow-up → retrieve → compose → check, over one context.

Every face (terminal, JSON CLI, Telegram, evaluation, benchmarks) calls `Answerer.ask` and
renders the `Answer` it returns. Any step may end the pipeline with a status and a message.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from bot import serving
from bot.answer import guard
from bot.answer.compose import (
    Composition,
    Unit,
    compose,
    make_units,
    select_units,
    trim_list,
)
from bot.answer.curated import CuratedIndex, CuratedParams, Entry, Match
from bot.answer.features import answer_row, item_rows, unit_rows
from bot.answer.followup import ConversationMemory
from bot.answer.llm import LLMComposer, Source
from bot.answer.messages import text_for
from bot.answer.model import Params
from bot.answer.models import Answer, Citation
from bot.config import Settings
from bot.embedding import CachedQueries, Embedder, make_embedder
from bot.errors import IndexEmpty, LLMError, StoreUnavailable
from bot.language import detect
from bot.retrieval import HybridRetriever, Passage, Query
from bot.store import KnowledgeStore

log = logging.getLogger(__name__)
_MARKER = re.compile(r"\[(\d+)\]")


@dataclass
class Context:
    """State passed along the pipeline."""

    question: str
    chat_id: str | None
    language: str = "da"
    text: str = ""
    search_text: str = ""
    notice: str = ""
    use_llm: bool = True
    query: Query | None = None
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    suggestion: dict | None = None  # a curated entry close below the threshold (see _curated)


@dataclass
class Prepared:
    """A question up to its candidate units and their features; the fitted parts do the rest.

    Evaluation prepares each question once and finishes it with every fold's parameters.
    """

    ctx: Context
    units: list[Unit] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    stopped: Answer | None = None  # the pipeline ended before retrieval (guard, outage)


class Answerer:
    """Answers questions from the knowledge index. Thread-safe; one per process."""

    def __init__(
        self,
        settings: Settings,
        store: KnowledgeStore | None = None,
        embedder: Embedder | None = None,
        memory: ConversationMemory | None = None,
        params: Params | None = None,
        curated_params: CuratedParams | None = None,
    ) -> None:
        self.settings = settings
        self.params = params or Params.load(settings.answer_params)
        self.store = store or KnowledgeStore.open(settings, read_only_ok=True)
        # The curated step and retrieval embed the same question: the second time is free.
        self.embedder = CachedQueries(embedder or make_embedder(settings))
        self.retriever = HybridRetriever(self.store, self.embedder)
        self.memory = memory or ConversationMemory(
            settings.memory_turns, settings.memory_ttl_seconds
        )
        self.llm = LLMComposer(settings)
        self.curated = CuratedIndex()
        self.curated_params = curated_params
        if curated_params is None and settings.curated_answers:
            self.curated_params = CuratedParams.load(settings.curated_params)
        self._doc_meta: dict[str, dict] = {}
        self._links: dict[str, dict[str, str]] | None = None
        self._links_refresh: str | None = None
        self._store_checked = False
        self._lock = threading.Lock()

    # -- public -------------------------------------------------------------------------------

    @classmethod
    def started(cls, settings: Settings) -> Answerer:
        """An answerer ready for its first question (what every command-line face needs)."""
        from bot.language import preload

        preload()
        serving.hold(settings)
        answerer = cls(settings)
        answerer.warm_up()
        return answerer

    def warm_up(self) -> None:
        """Load the index, the embedder and the language model before the first question.

        A Chroma server that is not up yet is not fatal: answers say "try again shortly"
        until it is, and the index is loaded on the first question after that.
        """
        self.embedder.embed_query("opvarmning")
        detect("opvarmning")
        try:
            self._check_store()
            self.retriever.ensure_fresh()
        except StoreUnavailable:
            log.warning("answer: the store cannot be reached yet; answers will say so")

    def _check_store(self) -> None:
        if not self._store_checked:
            self.store.check_embedder(self.embedder.backend, self.embedder.model, None)
            self._store_checked = True

    def ask(self, question: str, chat_id: str | None = None, use_llm: bool = True) -> Answer:
        """Answer one question; never raises for bad input or a store outage."""
        started = time.perf_counter()
        prepared = self.prepare(question, chat_id, use_llm, curated=self.curated_params is not None)
        answer = self.finish(prepared)
        ctx = prepared.ctx
        if ctx.suggestion and answer.status in ("answered", "not_found"):
            answer.suggestion = ctx.suggestion
        ctx.timings["total"] = (time.perf_counter() - started) * 1000
        answer.timings_ms = {k: ctx.timings.get(k, 0.0) for k in ("retrieve", "compose", "total")}
        # A decision log line without the question: what was decided, on which scores.
        log.info(
            "answer status=%s lang=%s refused=%s curated=%s confidence=%.3f sources=%s "
            "suggested=%s total_ms=%.0f",
            answer.status,
            answer.language,
            answer.refused,
            answer.curated["id"] if answer.curated else "-",
            answer.curated["score"] if answer.curated else answer.evidence.get("confidence", 0.0),
            ",".join(c.file for c in answer.citations),
            answer.suggestion["id"] if answer.suggestion else "-",
            ctx.timings["total"],
        )
        return answer

    def redact(self, text: str) -> str:
        """A question as it may be stored: personal data and unknown names removed."""
        from bot.privacy import redact, redact_names

        return redact_names(redact(text), self.retriever.vocabulary.knows)

    def forget(self, chat_id: str) -> None:
        """Forget a chat's conversation (/ny)."""
        self.memory.forget(chat_id)

    def sources(self) -> list[dict[str, str]]:
        """The documents in the index with title, date and link, newest first."""
        self.retriever.ensure_fresh()
        seen: dict[str, dict[str, str]] = {}
        for chunk in self.retriever.chunks:
            meta = chunk.metadata
            doc_id = meta["doc_id"]
            origin = (
                "upload"
                if doc_id.startswith("upload:")
                else "web"
                if doc_id.startswith(("http://", "https://"))
                else "shipped"
            )
            seen.setdefault(
                doc_id,
                {
                    "origin": origin,
                    "file": meta.get("file", ""),
                    "title": meta.get("title", ""),
                    "date": meta.get("source_date", ""),
                    "url": meta.get("source_url", ""),
                },
            )
        return sorted(seen.values(), key=lambda d: (d["date"], d["title"]), reverse=True)

    # -- pipeline -----------------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        chat_id: str | None = None,
        use_llm: bool = False,
        curated: bool = False,
    ) -> Prepared:
        """Guard, the curated step (when asked), follow-up, retrieval and unit features:
        everything before the fitted parts. A curated reply ends the pipeline here."""
        ctx = Context(question=question, chat_id=chat_id, use_llm=use_llm and self.llm.enabled)
        checked = self._guard(ctx)
        if checked.stop:
            return Prepared(ctx, stopped=self._stopped(ctx, checked.stop, length=checked.length))
        try:
            if curated:
                reply = self._curated(ctx)
                if reply is not None:
                    return Prepared(ctx, stopped=reply)
            self._retrieve(ctx)
        except StoreUnavailable:
            log.warning("answer: store unavailable")
            return Prepared(ctx, stopped=self._stopped(ctx, "unavailable"))
        except IndexEmpty:
            message = text_for(ctx.language, "index_empty")
            return Prepared(ctx, stopped=self._stopped(ctx, "unavailable", message=message))
        vector = ctx.query.vector if ctx.query else None
        units = make_units(
            ctx.passages,
            self.retriever.unit_terms,
            lambda chunk_id: self.retriever.parts_of(chunk_id, vector),
        )
        rows = unit_rows(units, ctx.query, self.retriever.idf, _absent, ctx.language)
        for unit in units:
            if unit.parts:
                unit.part_rows = item_rows(unit.parts, ctx.query, self.retriever.idf)
        return Prepared(ctx, units, rows)

    def _guard(self, ctx: Context) -> guard.GuardResult:
        checked = guard.check(ctx.question, self.settings.max_question_chars)
        ctx.text, ctx.search_text = checked.text, checked.search_text
        ctx.language = detect(checked.search_text or checked.text) if checked.text else "da"
        if checked.personal_data:
            ctx.notice = text_for(ctx.language, "personal_data_warning")
        return checked

    def curated_answer(self, question: str) -> Answer | None:
        """The curated reply a question gets on its own words, or None (evaluation uses it)."""
        ctx = Context(question=question, chat_id=None)
        checked = self._guard(ctx)
        if checked.stop or self.curated_params is None:
            return None
        try:
            return self._curated(ctx)
        except (StoreUnavailable, IndexEmpty):
            return None

    def finish(
        self, prepared: Prepared, params: Params | None = None, *, gate: bool = True
    ) -> Answer:
        """Rank the units, compose, and let the gate decide whether to answer.

        `gate=False` (training's grid search, whose gate never refuses) skips the answer
        features and the gate; the answer then has no `features`.
        """
        if prepared.stopped is not None:
            return prepared.stopped
        params = params or self.params
        ctx = prepared.ctx
        started = time.perf_counter()
        answer = self._compose(ctx, prepared, params, gate)
        ctx.timings["compose"] = (time.perf_counter() - started) * 1000
        check_citations(answer)
        return answer

    def _retrieve(self, ctx: Context) -> None:
        started = time.perf_counter()
        context = self.memory.context_for(ctx.chat_id, ctx.search_text)
        self._check_store()
        self.retriever.ensure_fresh()
        ctx.query = Query.from_text(
            ctx.search_text, context, self.retriever.vocabulary, ctx.language
        )
        if context and ctx.use_llm:
            try:
                condensed = self.llm.condense(ctx.search_text, context)
                ctx.query = Query.from_text(condensed, "", self.retriever.vocabulary, ctx.language)
            except LLMError as exc:
                log.info("llm: condensing failed (%s); using the rule-based expansion", exc)
        ctx.passages = self.retriever.pool(
            ctx.query,
            size=self.params.pool_size,
            fusion=self.params.fusion,
            shift=self.params.shift_for(ctx.language),
        )
        self.memory.remember(ctx.chat_id, ctx.query.text)
        ctx.timings["retrieve"] = (time.perf_counter() - started) * 1000

    # -- curated answers ----------------------------------------------------------------------

    def _curated(self, ctx: Context) -> Answer | None:
        """A reviewed answer when the question's own words match one closely enough."""
        if self.curated_params is None:
            return None
        started = time.perf_counter()
        self._load_servable()
        exact, refused = self.curated.verbatim(ctx.search_text)
        if exact is not None:  # one of the entry's own variants, word for word: no embedding
            ctx.timings["retrieve"] = (time.perf_counter() - started) * 1000
            self.memory.remember(ctx.chat_id, ctx.search_text)
            return self._curated_reply(ctx, exact, 1.0)
        candidates = self.curated.candidates(
            self.embedder.embed_query(ctx.search_text),
            ctx.search_text,
            ctx.language,
            self.retriever.idf,
            self.retriever.vocabulary,
        )
        ctx.timings["retrieve"] = (time.perf_counter() - started) * 1000
        if not candidates:
            return None
        scores = self.curated_params.model.probability(np.vstack([c.features for c in candidates]))
        best = int(np.argmax(scores))
        match, score = candidates[best], float(scores[best])
        if match.entry.id in refused:  # staff listed this very question under the entry's not:
            return None
        if score < self.curated_params.threshold:
            if score >= self.curated_params.suggest:
                ctx.suggestion = {
                    "id": match.entry.id,
                    "question": _canonical(match.entry, ctx.language),
                    "score": round(score, 3),
                }
            return None
        # A follow-up after a curated reply leans on this question, as after any answer.
        self.memory.remember(ctx.chat_id, ctx.search_text)
        return self._curated_reply(ctx, match, score)

    def _load_servable(self) -> None:
        """The index as it is now, and the curated entries that may be served from it."""
        self._check_store()
        self.retriever.ensure_fresh()
        self._load_curated()

    def _load_curated(self) -> None:
        """(Re)load the servable entries after a refresh, and every day (entries expire)."""
        key = (self.retriever.generation, date.today())
        if self.curated.loaded_for == key:
            return
        chunks = self.retriever.chunks
        self._doc_meta = {c.metadata["doc_id"]: c.metadata for c in chunks}
        hashes = {doc_id: meta.get("doc_hash", "") for doc_id, meta in self._doc_meta.items()}
        target = self.store.curated_answers()
        rows = target.rows_with_vectors() if target.exists() else ([], np.zeros((0, 0)), [])
        self.curated.load(rows, hashes, date.today(), key)

    def curated_by_id(
        self, entry_id: str, language: str, chat_id: str | None = None
    ) -> Answer | None:
        """The reply for an entry the user chose from a suggestion, or None when it is not
        servable any more (expired, a source changed, removed since it was suggested, or
        curated answers turned off)."""
        if self.curated_params is None:
            return None
        ctx = Context(question="", chat_id=chat_id, language=language)
        try:
            self._load_servable()
        except (StoreUnavailable, IndexEmpty):
            return None
        entry = next((e for e in self.curated.entries if e.id == entry_id), None)
        if entry is None:
            return None
        ctx.question = ctx.search_text = _canonical(entry, language)
        answer = self._curated_reply(ctx, Match(entry, ctx.question, 1.0, np.zeros(0)), 1.0)
        answer.curated["chosen"] = True
        if chat_id:  # a follow-up leans on the question the user chose
            self.memory.remember(chat_id, ctx.question)
        log.info("answer status=curated lang=%s curated=%s chosen=True", language, entry.id)
        return answer

    def _curated_reply(self, ctx: Context, match: Match, score: float) -> Answer:
        entry, language = match.entry, ctx.language
        body = entry.answers.get(language) or entry.answers["da"]
        order: list[int] = []
        for marker in _MARKER.finditer(body):
            if int(marker.group(1)) not in order:
                order.append(int(marker.group(1)))
        renumber = {old: new for new, old in enumerate(order, 1)}
        body = _MARKER.sub(lambda m: f"[{renumber[int(m.group(1))]}]", body)
        citations = []
        for old, new in renumber.items():
            source = entry.sources[old - 1]
            meta = self._doc_meta.get(source, {})
            citations.append(
                Citation(
                    new,
                    meta.get("title", source),
                    meta.get("source_url", ""),
                    meta.get("source_date", ""),
                    source,
                    _citing(body, new),
                )
            )
        text = "\n".join(
            [
                text_for(language, "curated_for", question=match.variant),
                body,
                text_for(
                    language, "curated_reviewed", reviewer=entry.reviewer, date=entry.reviewed
                ),
            ]
        )
        answer = Answer(
            question=ctx.question,
            language=language,
            text=text,
            citations=citations,
            # A declined question ("the material has no e-mail; ask here") is a reviewed refusal.
            refused=match.declined,
            status="curated",
            notice=ctx.notice,
            search_text=ctx.search_text,
            top_files=list(entry.sources),
            evidence={"curated": score, "similarity": match.similarity},
            curated={
                "id": entry.id,
                "question": match.variant,
                "reviewed": entry.reviewed,
                "score": round(score, 3),
            },
        )
        check_citations(answer)
        return answer

    def _compose(self, ctx: Context, prepared: Prepared, params: Params, gate: bool) -> Answer:
        units = prepared.units
        probabilities = params.ranker.probability(prepared.rows)
        for unit, p in zip(units, probabilities, strict=True):
            unit.score = float(p)
        chosen = select_units(units, params.add_share, params.max_units)
        row, confidence = None, 1.0
        if gate:
            row = answer_row(
                probabilities,
                chosen,
                ctx.passages,
                ctx.query,
                self.retriever.idf,
                ctx.language,
                _absent,
                self.retriever.vocabulary,
                params.intent_for(
                    ctx.query.vector,
                    chosen[0].passage.metadata.get("doc_hash", "") if chosen else "",
                ),
            )
            confidence = float(params.gate.probability(row[None, :])[0])
        evidence = {
            "dense": max((p.dense for p in ctx.passages), default=0.0),
            "coverage": chosen[0].coverage if chosen else 0.0,
            "score": chosen[0].score if chosen else 0.0,
            "confidence": confidence,
        }
        base = Answer(
            question=ctx.question,
            language=ctx.language,
            text="",
            notice=ctx.notice,
            search_text=ctx.query.text,
            top_files=_top_files(ctx.passages),
            evidence=evidence,
        )
        base.features = row
        if not chosen or confidence < params.threshold:
            return self._refusal(base, None)
        if chosen[0].is_absence:
            return self._refusal(base, compose(chosen[:1]))
        composition = compose(chosen, lambda unit: _quoted(unit, params))
        base.text = self._render(ctx.language, composition)
        base.citations = composition.citations
        if ctx.use_llm:
            self._generate(ctx, base, units)
        return base

    def _generate(self, ctx: Context, answer: Answer, units) -> None:
        """Replace the extractive text by a checked generated one; keep it on any failure."""
        by_doc: dict[str, list] = {}
        for unit in sorted(units, key=lambda u: -u.score)[:12]:
            by_doc.setdefault(unit.doc_id, []).append(unit)
        sources = []
        for n, group in enumerate(list(by_doc.values())[:5], 1):
            meta = group[0].passage.metadata
            sources.append(
                Source(
                    n,
                    meta.get("title", ""),
                    meta.get("source_date", ""),
                    meta.get("source_url", ""),
                    "\n".join(u.text for u in group),
                )
            )
        try:
            generated = self.llm.compose(ctx.search_text, ctx.language, sources)
        except LLMError:
            return
        renumber = {old: new for new, old in enumerate(generated.cited, 1)}
        answer.text = _MARKER.sub(lambda m: f"[{renumber[int(m.group(1))]}]", generated.text)
        answer.citations = [
            Citation(renumber[s.n], s.title, s.url, s.date, _file_of(by_doc, s.n), s.text)
            for s in sources
            if s.n in renumber
        ]
        answer.citations.sort(key=lambda c: c.n)
        answer.generated = True

    def _render(self, language: str, composition: Composition) -> str:
        danish_sources = any(language != "en" for language in composition.languages)
        lead_key = "lead_danish_sources" if language == "en" and danish_sources else "lead"
        parts = [text_for(language, lead_key), "\n".join(composition.lines)]
        if composition.dates_differ:
            parts.append(text_for(language, "dates_differ"))
        return "\n".join(parts)

    def _refusal(self, answer: Answer, composition: Composition | None) -> Answer:
        language = answer.language
        lines = []
        if composition is not None:
            lines += [text_for(language, "not_in_sources"), *composition.lines]
            answer.citations = composition.citations
        else:
            lines.append(text_for(language, "not_found"))
        lines += self._pointers(language)
        answer.text = "\n".join(lines)
        answer.refused = True
        answer.status = "not_found"
        return answer

    def _stopped(self, ctx: Context, status: str, length: int = 0, message: str = "") -> Answer:
        language = ctx.language
        text = message or text_for(
            language, status, length=length, limit=self.settings.max_question_chars
        )
        if status in ("injection", "personal_data_request", "unavailable"):
            pointers = self._pointers(language) if status != "unavailable" else []
            text = "\n".join([text, *pointers])
        return Answer(
            question=ctx.question,
            language=language,
            text=text,
            refused=True,
            status=status,
            notice=ctx.notice,
        )

    # -- knowledge-derived helpers ------------------------------------------------------------

    def _pointers(self, language: str) -> list[str]:
        """Where to ask and how to pitch an idea, with links taken from the knowledge base."""
        try:
            links = self._help_links()
        except (StoreUnavailable, IndexEmpty):
            return []
        lines = []
        if links.get("council"):
            lines.append(text_for(language, "where_to_ask", url=links["council"]["url"]))
        if links.get("ideas"):
            lines.append(text_for(language, "how_to_pitch", **links["ideas"]))
        return lines

    def _help_links(self) -> dict[str, dict[str, str]]:
        with self._lock:
            if self._links is not None and self._links_refresh == self.retriever.generation:
                return self._links
        self.retriever.ensure_fresh()
        pages = Counter(
            c.metadata.get("source_url")
            for c in self.retriever.chunks
            if c.metadata.get("kind") == "page" and c.metadata.get("source_url")
        )
        links: dict[str, dict[str, str]] = {}
        if pages:
            links["council"] = {"url": pages.most_common(1)[0][0]}
        pitch = Query.from_text(text_for("da", "pitch_query"), "", self.retriever.vocabulary)
        found = self.retriever.pool(pitch, size=1, fusion=self.params.fusion)
        if found:
            meta = found[0].metadata
            links["ideas"] = {"title": meta.get("title", ""), "url": meta.get("source_url", "")}
        with self._lock:
            self._links, self._links_refresh = links, self.retriever.generation
        return links


def check_citations(answer: Answer) -> None:
    """Every [n] refers to a listed source, and every listed source is cited; else fail loudly."""
    used = {int(n) for n in _MARKER.findall(answer.text)}
    listed = {c.n for c in answer.citations}
    if used != listed:
        raise AssertionError(f"citation check failed: used {sorted(used)}, listed {sorted(listed)}")


def _canonical(entry: Entry, language: str) -> str:
    """The question an entry answers, as its file states it first in this language."""
    return (entry.questions.get(language) or entry.questions["da"])[0]


def _citing(body: str, n: int) -> str:
    """The sentences or list items of a curated answer that cite source n, without markers."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+", body)
    marker = f"[{n}]"
    quoted = [_MARKER.sub("", p).strip() for p in pieces if marker in p]
    return " ".join(q for q in quoted if q)


def _quoted(unit: Unit, params: Params) -> str:
    """A unit's quote: a whole list keeps only the items the item model ranks close to best."""
    if params.items is None or unit.part_rows is None:
        return unit.text
    scores = params.items.probability(unit.part_rows)
    return trim_list(unit, list(scores), *params.list_trim)


def _absent(unit: Unit) -> bool:
    return unit.is_absence


def _file_of(by_doc: dict[str, list], n: int) -> str:
    group = list(by_doc.values())[n - 1]
    return group[0].passage.metadata.get("file", "")


def _top_files(passages: list[Passage]) -> list[str]:
    files: list[str] = []
    for p in passages:
        name = p.metadata.get("file", "")
        if name not in files:
            files.append(name)
    return files

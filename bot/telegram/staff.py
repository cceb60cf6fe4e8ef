"""Staff keep the knowledge current from a private chat: send a document, remove one.

An admin sends a PDF, HTML, Markdown or text file (the caption, if any, is its title). The bot
downloads it through the Bot API (getFile; Telegram lets bots download at most 20 MB), parses it
with the same loaders as `ingest.py`, and shows what it found with **Tilføj** / **Annullér**.
On confirm the file goes to the uploads folder (DATA_DIR/uploads by default, so knowledge/ may
stay read-only), its metadata to that folder's `sources.csv`, and an incremental ingest runs
while answering goes on. `/fjern` lists the uploaded documents as buttons and removes the one
chosen after a confirmation; shipped knowledge files are not removable from chat. Every change
is written to the audit log (`bot.audit`). Everyone else gets a polite no.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import html
import io
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot import audit
from bot.config import Settings
from bot.errors import BotError, LoaderError
from bot.ingest.loaders import MANIFEST, MANIFEST_COLUMNS, load_document
from bot.telegram.common import is_admin, send_html, services, user_language
from bot.telegram.texts import t

log = logging.getLogger(__name__)

UPLOAD_TYPES = (".pdf", ".html", ".htm", ".md", ".markdown", ".txt")
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API's getFile limit
_STAGING = ".staging"
_UPLOAD, _REMOVE, _REMOVE_YES, _REMOVE_NO = "up", "rm", "rmy", "rmn"
CALLBACK_PATTERN = rf"^({_UPLOAD}|{_REMOVE}|{_REMOVE_YES}|{_REMOVE_NO}):"


@dataclass
class PendingUpload:
    """A parsed upload waiting for the admin's Tilføj / Annullér."""

    admin: int
    name: str
    staged: Path
    title: str
    source_date: str  # the document's own date, else the day it was sent


def _allowed(update: Update, settings: Settings) -> bool:
    chat = update.effective_chat
    return is_admin(update, settings) and bool(chat and chat.type == ChatType.PRIVATE)


def safe_name(name: str | None) -> str:
    """A file name that is safe to store: no folders, no leading dots, at most 100 characters."""
    base = Path(name or "dokument").name.strip().lstrip(".")
    base = re.sub(r"[^\w.\- ]+", "_", base, flags=re.UNICODE).strip() or "dokument"
    stem, suffix = os.path.splitext(base)
    return stem[: 100 - len(suffix)] + suffix.lower()


# -- sending a document ---------------------------------------------------------------------------


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A document: check, download, parse, and ask the admin to confirm."""
    _, _, settings = services(context)
    language = user_language(update)
    message = update.effective_message
    if not _allowed(update, settings):
        await send_html(message, t(language, "upload_not_allowed"))
        return
    document = message.document
    name = safe_name(document.file_name)
    if Path(name).suffix not in UPLOAD_TYPES:
        await send_html(message, t(language, "upload_unsupported", name=html.escape(name)))
        return
    if (document.file_size or 0) > MAX_DOWNLOAD_BYTES:
        await send_html(message, t(language, "upload_too_big", name=html.escape(name)))
        return
    try:
        remote = await context.bot.get_file(document.file_id)
        data = bytes(await remote.download_as_bytearray())
    except BadRequest as exc:
        key = "upload_too_big" if "too big" in str(exc).lower() else "upload_download_failed"
        await send_html(message, t(language, key, name=html.escape(name)))
        return
    _forget_stale(settings.uploads_path / _STAGING, context.application.bot_data)
    token = secrets.token_hex(4)
    staged = settings.uploads_path / _STAGING / token / name
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(data)
    title = (message.caption or "").strip()[:200]
    try:
        found = await asyncio.to_thread(inspect, settings, staged, title)
    except LoaderError as exc:
        shutil.rmtree(staged.parent, ignore_errors=True)
        reason = str(exc).split(": ", 1)[-1]
        audit.record(
            settings.data_dir, update.effective_user.id, "upload", name, f"refused: {reason}"
        )
        await send_html(
            message,
            t(language, "upload_broken", name=html.escape(name), reason=html.escape(reason)),
        )
        return
    pending: dict[str, PendingUpload] = context.application.bot_data.setdefault("uploads", {})
    pending[token] = PendingUpload(
        update.effective_user.id, name, staged, title, found["date"] or date.today().isoformat()
    )
    replaces = (settings.uploads_path / name).exists()
    text = t(
        language,
        "upload_found",
        name=html.escape(name),
        title=html.escape(found["title"]),
        date=html.escape(found["date"] or "?"),
        parts=found["parts"],
        language_name=found["language"],
        units=found["units"],
    )
    if replaces:
        text += "\n" + t(language, "upload_replaces")
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(language, "add"), callback_data=f"{_UPLOAD}:{token}:y"),
                InlineKeyboardButton(t(language, "cancel"), callback_data=f"{_UPLOAD}:{token}:n"),
            ]
        ]
    )
    await send_html(message, text, reply_markup=buttons)


_STAGED_FOR = 24 * 3600  # an upload nobody confirmed is dropped after a day


def _forget_stale(staging: Path, bot_data: dict) -> None:
    """Drop staged uploads nobody confirmed or cancelled within a day (also after a restart)."""
    if not staging.is_dir():
        return
    pending: dict[str, PendingUpload] = bot_data.setdefault("uploads", {})
    for folder in staging.iterdir():
        if time.time() - folder.stat().st_mtime > _STAGED_FOR:
            shutil.rmtree(folder, ignore_errors=True)
            pending.pop(folder.name, None)


def inspect(settings: Settings, path: Path, title: str) -> dict:
    """What a staged upload holds, parsed exactly as ingest will parse it."""
    from bot.ingest.chunking import chunk_document

    row = _metadata_row(path.name, title, path.suffix)
    doc = load_document(path, path.parent, {path.name: row}, settings.max_document_bytes)
    units = chunk_document(doc, settings.chunk_max_words, settings.chunk_overlap_words)
    if len(units) > settings.max_document_units:
        raise LoaderError(
            f"{path.name}: {len(units)} quotable units, more than the limit of "
            f"{settings.max_document_units}"
        )
    pages = [p for _, p in doc.parts if p is not None]
    return {
        "title": doc.metadata.get("title", path.name),
        "date": doc.metadata.get("source_date", ""),
        "parts": f"{len(pages)} s." if pages else f"{len({u.section for u in units})} afsnit",
        "language": doc.metadata.get("language", "da"),
        "units": len(units),
    }


def _metadata_row(name: str, title: str, suffix: str) -> dict[str, str]:
    return {
        "file": name,
        "title": title,
        "source_url": "",
        "source_date": "",
        "kind": "report" if suffix == ".pdf" else "background",
        "language": "",
    }


async def on_staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tilføj / Annullér for an upload, and the /fjern choices."""
    query = update.callback_query
    _, _, settings = services(context)
    language = user_language(update)
    kind, key, choice = f"{query.data or ''}::".split(":")[:3]
    if not _allowed(update, settings):
        await query.answer(t(language, "admin_only"), show_alert=True)
        return
    await query.answer()
    with contextlib.suppress(BadRequest):  # the buttons were already removed
        await query.edit_message_reply_markup(reply_markup=None)
    if kind == _UPLOAD:
        await _confirm_upload(update, context, key, choice == "y")
    elif kind == _REMOVE:
        await _ask_remove(update, context, key)
    elif kind in (_REMOVE_YES, _REMOVE_NO):
        await _remove(update, context, key, kind == _REMOVE_YES)


async def _confirm_upload(
    update: Update, context: ContextTypes.DEFAULT_TYPE, token: str, confirmed: bool
) -> None:
    _, _, settings = services(context)
    language = user_language(update)
    message = update.effective_message
    pending = context.application.bot_data.setdefault("uploads", {}).pop(token, None)
    if pending is None:
        await send_html(message, t(language, "upload_expired"))
        return
    admin = update.effective_user.id
    if not confirmed:
        shutil.rmtree(pending.staged.parent, ignore_errors=True)
        audit.record(settings.data_dir, admin, "upload", pending.name, "cancelled")
        await send_html(message, t(language, "upload_cancelled", name=html.escape(pending.name)))
        return
    target = settings.uploads_path / pending.name
    action = "replace" if target.exists() else "upload"

    def store() -> None:
        # The new version is written before the old chunks are deleted (ingest's order).
        row = _metadata_row(pending.name, pending.title, target.suffix)
        row["source_date"] = pending.source_date
        write_manifest_row(settings.uploads_path, row)
        os.replace(pending.staged, target)
        shutil.rmtree(pending.staged.parent, ignore_errors=True)

    text = await _changed(update, context, action, pending.name, store)
    await send_html(message, text)


async def _changed(
    update, context, action: str, name: str, change, fetch: bool = False, undo=None
) -> str:
    """Apply a change to the uploads folder, then refresh the index; one change at a time.

    With `fetch` the web sources are fetched too; a page that could not be fetched is named
    and `undo` takes the change back.
    """
    answerer, _, settings = services(context)
    language = user_language(update)
    lock: asyncio.Lock = context.application.bot_data.setdefault("change_lock", asyncio.Lock())
    if lock.locked():
        await send_html(update.effective_message, t(language, "change_waits"))
    async with lock:
        from bot.ingest.cli import format_report
        from bot.ingest.pipeline import UPLOAD_PREFIX, run_ingest

        try:
            await asyncio.to_thread(change)
            report = await asyncio.to_thread(
                run_ingest,
                settings,
                store=answerer.store,
                embedder=answerer.embedder,
                fetch=fetch,
                lock_wait_seconds=60,
            )
            await asyncio.to_thread(answerer.retriever.load)
        except (BotError, OSError) as exc:
            log.warning("telegram: %s of %s failed: %s", action, name, exc)
            audit.record(
                settings.data_dir, update.effective_user.id, action, name, f"failed: {exc}"
            )
            return t(language, "change_failed", error=html.escape(str(exc)))
        failed = [f for f in report.failures if f["document"] in (UPLOAD_PREFIX + name, name)]
        result = f"failed: {failed[0]['reason']}" if failed else "ok"
        if failed and undo is not None:
            await asyncio.to_thread(undo)
        audit.record(settings.data_dir, update.effective_user.id, action, name, result)
        if failed and undo is not None:
            return t(
                language,
                "add_failed",
                url=html.escape(name),
                reason=html.escape(failed[0]["reason"]),
            )
        key = {
            "upload": "upload_done",
            "replace": "upload_done",
            "remove": "remove_done",
            "add-web": "add_done",
        }[action]
        return t(language, key, name=html.escape(name), summary=html.escape(format_report(report)))


def write_manifest_row(folder: Path, row: dict[str, str] | None, remove: str = "") -> None:
    """Add or replace a row of the uploads folder's sources.csv (or remove one), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    rows: list[dict[str, str]] = []
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    # A row is a file (an upload) or, with no file, a web page (its URL).
    name = (row.get("file") or row.get("source_url")) if row else remove
    rows = [r for r in rows if (r.get("file") or r.get("source_url")) != name]
    if row:
        rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(MANIFEST_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, path)


# -- web pages ------------------------------------------------------------------------------------


async def add_web_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tilfoej <url>, /add <url>: add a web page as a source, fetch and index it."""
    from urllib.parse import urldefrag, urlsplit

    from bot.ingest.crawl import web_sources

    _, _, settings = services(context)
    language = user_language(update)
    if not _allowed(update, settings):
        await send_html(update.effective_message, t(language, "admin_only"))
        return
    url = urldefrag(" ".join(context.args or []).strip()).url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        await send_html(update.effective_message, t(language, "add_usage"))
        return
    listed = set(web_sources(settings.knowledge_dir)[0]) | set(added_pages(settings))
    if url in listed:
        await send_html(update.effective_message, t(language, "add_exists", url=html.escape(url)))
        return
    row = {"file": "", "title": "", "source_url": url, "source_date": "", "kind": "page"}

    def add() -> None:
        write_manifest_row(settings.uploads_path, row)

    def undo() -> None:
        write_manifest_row(settings.uploads_path, None, remove=url)

    await send_html(update.effective_message, t(language, "add_started", url=html.escape(url)))
    text = await _changed(update, context, "add-web", url, add, fetch=True, undo=undo)
    await send_html(update.effective_message, text)


# -- removing -------------------------------------------------------------------------------------


def uploaded_files(settings: Settings) -> list[str]:
    folder = settings.uploads_path
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in UPLOAD_TYPES
    )


def added_pages(settings: Settings) -> list[str]:
    """The web pages staff added from chat."""
    from bot.ingest.crawl import web_sources

    return sorted(web_sources(settings.uploads_path)[0])


def removable(settings: Settings) -> list[str]:
    """What /fjern offers: uploaded documents, then web pages added from chat."""
    return uploaded_files(settings) + added_pages(settings)


def _key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:12]


def _by_key(settings: Settings, key: str) -> str | None:
    return next((n for n in removable(settings) if _key(n) == key), None)


async def remove_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/fjern, /remove: the uploaded documents as buttons."""
    _, _, settings = services(context)
    language = user_language(update)
    if not _allowed(update, settings):
        await send_html(update.effective_message, t(language, "admin_only"))
        return
    names = removable(settings)
    if not names:
        await send_html(update.effective_message, t(language, "remove_nothing"))
        return
    buttons = [
        [InlineKeyboardButton(name[:60], callback_data=f"{_REMOVE}:{_key(name)}")] for name in names
    ]
    await send_html(
        update.effective_message,
        t(language, "remove_choose"),
        reply_markup=InlineKeyboardMarkup(buttons[:50]),
    )


async def _ask_remove(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> None:
    _, _, settings = services(context)
    language = user_language(update)
    name = _by_key(settings, key)
    if name is None:
        await send_html(update.effective_message, t(language, "remove_gone"))
        return
    buttons = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t(language, "remove_yes"), callback_data=f"{_REMOVE_YES}:{key}"
                ),
                InlineKeyboardButton(t(language, "cancel"), callback_data=f"{_REMOVE_NO}:{key}"),
            ]
        ]
    )
    await send_html(
        update.effective_message,
        t(language, "remove_confirm", name=html.escape(name)),
        reply_markup=buttons,
    )


async def _remove(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, yes: bool) -> None:
    _, _, settings = services(context)
    language = user_language(update)
    name = _by_key(settings, key)
    if name is None:
        await send_html(update.effective_message, t(language, "remove_gone"))
        return
    if not yes:
        await send_html(
            update.effective_message, t(language, "remove_cancelled", name=html.escape(name))
        )
        return

    page = name.startswith(("http://", "https://"))

    def delete() -> None:
        if not page:
            (settings.uploads_path / name).unlink(missing_ok=True)
        write_manifest_row(settings.uploads_path, None, remove=name)

    text = await _changed(update, context, "remove", name, delete, fetch=page)
    await send_html(update.effective_message, text)

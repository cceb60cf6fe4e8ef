"""Spørg Rådet on Telegram.

Answers questions in private chats, and in groups when mentioned or replied to; cites sources;
collects 👍/👎 feedback; staff can check status and refresh the knowledge base. Run with
`python -m bot telegram` (polling, or a webhook when WEBHOOK_URL is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
import time
from collections import defaultdict, deque

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ChatType, MessageEntityType, ParseMode
from telegram.error import BadRequest
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import audit, serving
from bot.answer.core import Answerer
from bot.answer.models import Answer
from bot.config import Settings
from bot.errors import BotError
from bot.language import detect
from bot.metrics import Metrics
from bot.telegram import staff
from bot.telegram.common import is_admin, send_html, services, user_language
from bot.telegram.feedback import FeedbackStore
from bot.telegram.render import render_answer, split_message
from bot.telegram.texts import COMMANDS, t

log = logging.getLogger(__name__)

_CAPTION_LIMIT = 1000  # Telegram allows 1,024 characters in a photo caption
_TYPING_EVERY = 4.0  # Telegram shows "typing…" for about five seconds per action.
_TYPING_GRACE = 1.0  # seconds an answer waits for a "typing…" request still in flight
_FEEDBACK_PREFIX = "fb"
_REASON_PREFIX = "fr"
_SUGGESTION_PREFIX = "sv"  # 'sv:<language>:<entry id>', within Telegram's 64 bytes
_CALLBACK_LIMIT = 64  # bytes of callback_data Telegram accepts
_BUTTON_TEXT = 60  # characters of a suggested question shown on its button


class RateLimit:
    """At most `per_minute` questions per user in any 60-second window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[int, deque[float]] = defaultdict(deque)

    def allow(self, user_id: int) -> bool:
        now = time.monotonic()
        seen = self._seen[user_id]
        while seen and now - seen[0] > 60:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return False
        seen.append(now)
        return True


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: welcome, what the bot can answer, privacy note."""
    _, _, settings = services(context)
    await send_html(
        update.effective_message,
        t(user_language(update), "welcome", days=settings.feedback_retention_days),
    )


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/hjaelp, /help: how to use the bot."""
    _, _, settings = services(context)
    language = user_language(update)
    text = t(language, "help", username=context.bot.username)
    if is_admin(update, settings):
        text += "\n\n" + t(language, "help_admin")
    await send_html(update.effective_message, text)


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/om, /about: what is stored and the limitations."""
    _, _, settings = services(context)
    await send_html(
        update.effective_message,
        t(user_language(update), "about", days=settings.feedback_retention_days),
    )


async def sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/kilder, /sources: the documents with dates and the last refresh."""
    answerer, _, _ = services(context)
    docs = await asyncio.to_thread(answerer.sources)
    lines = [
        t(
            user_language(update),
            "sources",
            refreshed=html.escape(str(answerer.retriever.refreshed_at or "?")),
        )
    ]
    for doc in docs:
        title = html.escape(doc["title"])
        link = (
            f'<a href="{html.escape(doc["url"], quote=True)}">{title}</a>' if doc["url"] else title
        )
        origin = (
            "" if doc["origin"] == "shipped" else f" ({t(user_language(update), doc['origin'])})"
        )
        lines.append(f"• {html.escape(doc['date'] or '?')} – {link}{origin}")
    for part in split_message("\n".join(lines)):
        await send_html(update.effective_message, part)


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ny, /new: forget this chat's conversation."""
    answerer, _, _ = services(context)
    answerer.forget(str(update.effective_chat.id))
    await send_html(update.effective_message, t(user_language(update), "reset"))


async def idea(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ide, /idea: how to submit an idea, answered from the knowledge base."""
    await answer_question(update, context, t(user_language(update), "idea_question"))


def _addressed_text(update: Update, bot_username: str, bot_id: int) -> str | None:
    """The question in this message, or None when the bot is not addressed (groups)."""
    message = update.effective_message
    text = message.text or ""
    if update.effective_chat.type == ChatType.PRIVATE:
        return text
    mention = f"@{bot_username}".lower()
    mentioned = any(
        entity.type == MessageEntityType.MENTION
        and text[entity.offset : entity.offset + entity.length].lower() == mention
        for entity in message.entities or ()
    )
    replied = bool(
        message.reply_to_message
        and message.reply_to_message.from_user
        and message.reply_to_message.from_user.id == bot_id
    )
    if not (mentioned or replied):
        return None
    return " ".join(word for word in text.split() if word.lower() != mention)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A question: in private always, in groups when mentioned or replied to."""
    text = _addressed_text(update, context.bot.username, context.bot.id)
    if text is None:
        return
    await answer_question(update, context, text)


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Rate-limit, answer off the event loop while showing "typing…", send with feedback buttons."""
    answerer, _, _ = services(context)
    limiter: RateLimit = context.application.bot_data["rate_limit"]
    user_id = update.effective_user.id if update.effective_user else 0
    if not limiter.allow(user_id):
        await send_html(
            update.effective_message,
            t(detect(text) if text.strip() else user_language(update), "rate_limited"),
        )
        return
    chat_id = str(update.effective_chat.id)
    answered = asyncio.Event()
    typing = asyncio.create_task(_keep_typing(context, update.effective_chat.id, answered))
    try:
        answer: Answer = await asyncio.to_thread(answerer.ask, text, chat_id)
    finally:
        answered.set()
        # Let an action in flight finish (briefly), so "typing…" comes before the answer.
        _, late = await asyncio.wait({typing}, timeout=_TYPING_GRACE)
        if late:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing
    # The decision is logged without text; a question refused for lack of material is kept,
    # redacted, for the gap report (`python -m bot report`, /rapport).
    gap = await asyncio.to_thread(answerer.redact, text) if answer.status == "not_found" else None
    await asyncio.to_thread(context.application.bot_data["metrics"].record, answer, gap)
    if time.monotonic() - context.application.bot_data.get("purged_at", 0.0) > 86400:
        await asyncio.to_thread(purge_expired, context.application)
    await send_answer(update.effective_message, context, answer)


async def send_answer(message: Message, context: ContextTypes.DEFAULT_TYPE, answer: Answer) -> None:
    """The rendered answer; its last part carries a suggested reviewed answer and 👍/👎."""
    _, feedback, _ = services(context)
    answer_id = secrets.token_hex(8)
    rows = []
    suggested = _suggestion_button(answer)
    if suggested is not None:
        rows.append([suggested])
    if answer.status in ("answered", "not_found", "curated"):
        feedback.remember(
            answer_id, answer.question, [c.file for c in answer.citations], answer.status
        )
        rows.append(
            [
                InlineKeyboardButton("👍", callback_data=f"{_FEEDBACK_PREFIX}:{answer_id}:1"),
                InlineKeyboardButton("👎", callback_data=f"{_FEEDBACK_PREFIX}:{answer_id}:0"),
            ]
        )
    markup = InlineKeyboardMarkup(rows) if rows else None
    parts = render_answer(answer)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        await send_html(message, part, reply_markup=markup if last else None)


def _suggestion_button(answer: Answer) -> InlineKeyboardButton | None:
    """'📌 <the question a reviewed answer answers>', or None without a suggestion."""
    if not answer.suggestion:
        return None
    data = f"{_SUGGESTION_PREFIX}:{answer.language}:{answer.suggestion['id']}"
    if len(data.encode("utf-8")) > _CALLBACK_LIMIT:
        return None
    question = answer.suggestion["question"]
    if len(question) > _BUTTON_TEXT:
        question = question[: _BUTTON_TEXT - 1].rstrip() + "…"
    return InlineKeyboardButton(f"📌 {question}", callback_data=data)


async def on_suggestion(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A suggested reviewed answer was pressed: send it (if it may still be served)."""
    query = update.callback_query
    answerer, _, _ = services(context)
    parts = (query.data or "").split(":")
    # Always answer the callback query, or the user's client shows a spinner for a while.
    await query.answer()
    if len(parts) != 3 or parts[1] not in ("da", "en"):
        return
    language, entry_id = parts[1], parts[2]
    chat_id = str(update.effective_chat.id) if update.effective_chat else None
    answer = await asyncio.to_thread(answerer.curated_by_id, entry_id, language, chat_id)
    if answer is None:
        await send_html(query.message, t(language, "suggestion_gone"))
        return
    await asyncio.to_thread(context.application.bot_data["metrics"].record, answer, None)
    await send_answer(query.message, context, answer)


async def _keep_typing(
    context: ContextTypes.DEFAULT_TYPE, chat_id: int, answered: asyncio.Event
) -> None:
    """Show "typing…" and refresh it until the answer is ready.

    The first action is always sent, and the one in flight is not cut off at once (a cancelled
    request may or may not have reached Telegram), so even a fast answer shows "typing…" first.
    """
    while True:
        try:
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except Exception as exc:  # a lost indicator must never cost the answer
            log.debug("telegram: chat action failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answered.wait(), _TYPING_EVERY)
            return


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A 👍/👎 press: store it; after 👎 ask why with buttons; then a thank-you."""
    query = update.callback_query
    _, feedback, _ = services(context)
    language = user_language(update)
    parts = (query.data or "").split(":")
    # Always answer the callback query, or the user's client shows a spinner for a while.
    if len(parts) != 3 or parts[0] not in (_FEEDBACK_PREFIX, _REASON_PREFIX):
        await query.answer()
        return
    if parts[0] == _REASON_PREFIX:
        await asyncio.to_thread(feedback.set_reason, parts[1], parts[2])
        await query.answer(t(language, "thanks_toast"))
        markup = _thanks(language)
    else:
        positive = parts[2] == "1"
        await asyncio.to_thread(feedback.vote, parts[1], positive)
        await query.answer(t(language, "thanks_toast" if positive else "why_toast"))
        markup = _thanks(language) if positive else _reasons(language, parts[1])
    with contextlib.suppress(BadRequest):  # already replaced by an earlier press
        await query.edit_message_reply_markup(reply_markup=markup)


def _thanks(language: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t(language, "thanks"), callback_data="fb:done")]]
    )


def _reasons(language: str, answer_id: str) -> InlineKeyboardMarkup:
    """Why was it 👎? Two rows of two buttons; callback_data 'fr:<16 hex>:<code>' = 21 bytes."""

    def button(code: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            t(language, f"reason_{code}"), callback_data=f"{_REASON_PREFIX}:{answer_id}:{code}"
        )

    return InlineKeyboardMarkup([[button("w"), button("m")], [button("u"), button("o")]])


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status (staff): documents, chunks, last refresh, feedback counts."""
    answerer, feedback, settings = services(context)
    if not is_admin(update, settings):
        await send_html(update.effective_message, t(user_language(update), "admin_only"))
        return
    from bot.status import index_status

    info = await asyncio.to_thread(index_status, settings, answerer.store, answerer.params)
    votes = await asyncio.to_thread(feedback.counts)
    text = (
        f"<b>Status</b>\nDokumenter: {info['documents']}\nChunks: {info['chunks']}\n"
        f"Model: {html.escape(str(info['embedding_backend']))}/{html.escape(str(info['embedding_model']))}\n"
        f"Senest opdateret: {html.escape(str(info['last_refresh']))}\n"
        f"Feedback: 👍 {votes['up']} · 👎 {votes['down']}"
    )
    unfitted = [doc["doc_id"] for doc in info["items"] if not doc["fitted"]]
    if unfitted:
        # Answers from these are gated without the intent model until `make train` (README).
        text += "\n<b>Nye eller ændrede siden make train</b>\n" + html.escape(", ".join(unfitted))
    changes = audit.last(settings.data_dir, 5)
    if changes:
        text += "\n<b>Seneste ændringer fra chat</b>\n" + "\n".join(
            html.escape(f"{c['time']} {c['admin']} {c['action']} {c['document']}: {c['result']}")
            for c in changes
        )
    await send_html(update.effective_message, text)


async def refresh(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/opdater, /refresh (staff): re-ingest knowledge/ in the background, then report."""
    answerer, _, settings = services(context)
    language = user_language(update)
    if not is_admin(update, settings):
        await send_html(update.effective_message, t(language, "admin_only"))
        return
    running = context.application.bot_data.get("refresh_task")
    if running is not None and not running.done():
        await send_html(update.effective_message, t(language, "refresh_busy"))
        return
    await send_html(update.effective_message, t(language, "refresh_started"))
    task = asyncio.create_task(_run_refresh(update.effective_message, answerer, settings, language))
    context.application.bot_data["refresh_task"] = task


async def _run_refresh(
    message: Message, answerer: Answerer, settings: Settings, language: str
) -> None:
    from bot.ingest.cli import format_report
    from bot.ingest.pipeline import run_ingest

    try:
        report = await asyncio.to_thread(
            run_ingest,
            settings,
            store=answerer.store,
            embedder=answerer.embedder,
            lock_wait_seconds=30,
        )
        await asyncio.to_thread(answerer.retriever.load)
        text = t(language, "refresh_done", summary=html.escape(format_report(report)))
    except BotError as exc:
        log.warning("telegram: refresh failed: %s", exc)
        text = t(language, "refresh_failed", error=html.escape(str(exc)))
    except Exception as exc:  # a background task must always report back to the admin
        log.exception("telegram: refresh crashed")
        text = t(language, "refresh_failed", error=html.escape(exc.__class__.__name__))
    await send_html(message, text)


async def report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rapport, /report (staff): the gap report's chart and summary, as a photo."""
    answerer, feedback, settings = services(context)
    language = user_language(update)
    if not is_admin(update, settings):
        await send_html(update.effective_message, t(language, "admin_only"))
        return
    from bot.report import build_report, chart_png, summary_text

    built = await asyncio.to_thread(
        build_report,
        settings,
        answerer.embedder,
        30,
        context.application.bot_data["metrics"],
        feedback,
    )
    photo = await asyncio.to_thread(chart_png, built)
    caption = html.escape(_clip(summary_text(built), _CAPTION_LIMIT))
    await update.effective_message.reply_photo(photo, caption=caption, parse_mode=ParseMode.HTML)


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a line end when it must be cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit("\n", 1)[0] if "\n" in cut else cut) + "…"


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error (redacted by the log filter) and tell the user politely."""
    log.error("telegram: error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message:
        with contextlib.suppress(Exception):
            await update.effective_message.reply_text(t(user_language(update), "error"))


async def _post_init(application: Application) -> None:
    """Register the command menus (Danish default, English) and warm the answerer."""
    for language, commands in COMMANDS.items():
        menu = [BotCommand(name, description) for name, description in commands]
        await application.bot.set_my_commands(menu, language_code=language)
    await application.bot.set_my_commands([BotCommand(n, d) for n, d in COMMANDS["da"]])
    answerer: Answerer = application.bot_data["answerer"]
    await asyncio.to_thread(answerer.warm_up)
    await asyncio.to_thread(purge_expired, application)


def purge_expired(application: Application) -> None:
    """Apply the retention period to stored feedback and answer metrics."""
    settings: Settings = application.bot_data["settings"]
    days = settings.feedback_retention_days
    removed = application.bot_data["feedback"].purge(days) + application.bot_data["metrics"].purge(
        days
    )
    if removed:
        log.info("privacy: purged %d rows older than %d days", removed, days)


def build_application(
    settings: Settings,
    answerer: Answerer | None = None,
    feedback: FeedbackStore | None = None,
) -> Application:
    """The configured Application with every handler registered."""
    if settings.telegram_bot_token is None:
        raise BotError("TELEGRAM_BOT_TOKEN is not set.")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_url.replace("/bot", "/file/bot"))
        .concurrent_updates(True)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(_post_init)
    )
    application = builder.build()
    answerer = answerer or Answerer(settings)
    feedback = feedback or FeedbackStore(settings.data_dir / "feedback.sqlite3")
    # Stored questions lose personal data and names the knowledge base does not know.
    feedback.redactor = answerer.redact
    application.bot_data.update(
        settings=settings,
        answerer=answerer,
        feedback=feedback
        or FeedbackStore(settings.data_dir / "feedback.sqlite3", redactor=answerer.redact),
        rate_limit=RateLimit(settings.rate_limit_per_minute),
        metrics=Metrics(settings.data_dir / "metrics.sqlite3"),
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler(["hjaelp", "help"], help_command))
    application.add_handler(CommandHandler(["kilder", "sources"], sources))
    application.add_handler(CommandHandler(["ide", "idea"], idea))
    application.add_handler(CommandHandler(["om", "about"], about))
    application.add_handler(CommandHandler(["ny", "new"], reset))
    application.add_handler(CommandHandler("status", status))
    application.add_handler(CommandHandler(["opdater", "refresh"], refresh))
    application.add_handler(CommandHandler(["rapport", "report"], report))
    application.add_handler(CommandHandler(["fjern", "remove"], staff.remove_command))
    application.add_handler(CommandHandler(["tilfoej", "add"], staff.add_web_command))
    application.add_handler(MessageHandler(filters.Document.ALL, staff.on_document))
    application.add_handler(
        CallbackQueryHandler(staff.on_staff_button, pattern=staff.CALLBACK_PATTERN)
    )
    application.add_handler(
        CallbackQueryHandler(on_feedback, pattern=rf"^({_FEEDBACK_PREFIX}|{_REASON_PREFIX}):")
    )
    application.add_handler(CallbackQueryHandler(on_suggestion, pattern=rf"^{_SUGGESTION_PREFIX}:"))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    application.add_error_handler(on_error)
    return application


def run(settings: Settings) -> int:
    """Run the bot until interrupted: polling, or a webhook when WEBHOOK_URL is set."""
    from bot.language import preload

    preload()
    serving.hold(settings)  # ingest.py from another process now refuses (bot.serving)
    application = build_application(settings)
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        application.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path="telegram",
            webhook_url=settings.webhook_url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0

"""Helpers every Telegram handler module uses: services, the user's language, sending HTML."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.answer.core import Answerer
from bot.config import Settings
from bot.telegram.feedback import FeedbackStore
from bot.telegram.render import strip_html

log = logging.getLogger(__name__)


def user_language(update: Update) -> str:
    """The user's interface language: English if Telegram says so, else Danish."""
    user = update.effective_user
    code = (user.language_code or "") if user else ""
    return "en" if code.startswith("en") else "da"


def services(context: ContextTypes.DEFAULT_TYPE) -> tuple[Answerer, FeedbackStore, Settings]:
    data = context.application.bot_data
    return data["answerer"], data["feedback"], data["settings"]


async def send_html(message: Message, text: str, **kwargs) -> Message:
    """Send HTML; if Telegram rejects the entities, send the same text as plain text."""
    try:
        return await message.reply_text(
            text, parse_mode=ParseMode.HTML, disable_web_page_preview=True, **kwargs
        )
    except BadRequest as exc:
        if "parse entities" not in str(exc).lower():
            raise
        log.warning("telegram: HTML rejected (%s); sending plain text", exc)
        return await message.reply_text(strip_html(text), **kwargs)


def is_admin(update: Update, settings: Settings) -> bool:
    user = update.effective_user
    return bool(user and user.id in settings.admin_user_ids)

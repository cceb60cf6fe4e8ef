"""A strict, in-process fake of the Telegram Bot API server for end-to-end tests.

``FakeTelegram`` runs a real HTTP server (aiohttp) on ``127.0.0.1`` in a background
thread with its own event loop.  A real ``python-telegram-bot`` application (or any
other Bot API client) talks to it over HTTP exactly as it would talk to
``api.telegram.org``; the test plays the *user* through thread-safe helper methods.

Example::

    from telegram.ext import ApplicationBuilder

    with FakeTelegram(token="123456:TEST-token") as tg:
        app = (
            ApplicationBuilder()
            .token(tg.token)
            .base_url(tg.base_url)
            .base_file_url(tg.base_file_url)
            .build()
        )
        ...  # initialize/start the app and updater.start_polling(poll_interval=0, timeout=1)
        tg.send_message("/start", user_id=42)
        [reply] = await tg.wait_for_bot_messages_async(chat_id=42, count=1)
        assert "Velkommen" in reply.text

Bot API side (what the bot may call)
    getMe, getUpdates (real long polling: ``timeout``, ``offset``, ``limit``,
    ``allowed_updates``), sendMessage, sendChatAction, editMessageText,
    editMessageReplyMarkup, deleteMessage, answerCallbackQuery, setMyCommands,
    getMyCommands, deleteMyCommands, setWebhook, deleteWebhook, getWebhookInfo, close,
    setMyDescription/getMyDescription, setMyShortDescription/getMyShortDescription,
    setChatMenuButton/getChatMenuButton.  Any other method gets Telegram's
    ``404 Not Found`` (PTB raises ``EndPointNotFound``/``InvalidToken``), so a bot that
    starts using a method the fake does not model fails loudly instead of silently.

    Requests may be JSON bodies, ``application/x-www-form-urlencoded`` or
    ``multipart/form-data`` (PTB 22 posts form data whose nested fields such as
    ``reply_markup`` are JSON-encoded strings) or query strings.  Method names are
    case-insensitive like Telegram's.  Answers are Telegram-shaped:
    ``{"ok": true, "result": ...}`` or
    ``{"ok": false, "error_code": 400, "description": "Bad Request: ..."}`` with the
    HTTP status equal to ``error_code``.

Strictness (what Telegram rejects, the fake rejects, with Telegram's descriptions)
    * wrong token -> 401 ``Unauthorized`` (malformed token -> 404 ``Not Found``);
    * text longer than 4096 UTF-16 code units *after* entity parsing
      (``message is too long`` / ``MESSAGE_TOO_LONG`` for edits), empty text
      (``message text is empty``);
    * ``parse_mode=HTML`` is parsed by a port of TDLib's HTML parser: unsupported
      tags, unclosed/unmatched/misnested tags, a ``<`` that does not start a tag,
      ``span`` without ``class="tg-spoiler"``... give
      ``can't parse entities: ...`` with Telegram's wording and byte offsets.
      **Stricter than Telegram:** a bare ``&`` that does not start ``&lt;`` ``&gt;``
      ``&amp;`` ``&quot;`` or a numeric reference is rejected too (Telegram shows it
      literally, but the Bot API docs require escaping it, and it almost always means
      the bot forgot ``html.escape``).  Pass ``strict_html_ampersand=False`` to get
      Telegram's lenient behaviour.  MarkdownV2 and legacy Markdown are ported too;
    * ``callback_data`` must be 1-64 bytes of UTF-8 (``BUTTON_DATA_INVALID``), an
      inline button needs exactly one action, URL buttons need a valid URL;
    * editing with identical text, entities and keyboard ->
      ``message is not modified: ...``; editing text without ``reply_markup`` removes
      the inline keyboard, as on Telegram;
    * unknown chats -> ``chat not found``; chats blocked via ``block_bot()`` ->
      403 ``Forbidden: bot was blocked by the user``;
    * a second concurrent ``getUpdates`` terminates the first one with 409, and
      ``getUpdates`` while a webhook is set gives 409 Conflict;
    * groups honour *privacy mode* (on by default, as for new bots): the bot only
      receives commands, replies to its own messages and private messages.  Updates
      that were not delivered are listed in ``undelivered`` and in assertion messages.
      Use ``FakeTelegram(privacy_mode=False)`` to model an admin bot.

    Like Telegram, the fake trims leading/trailing whitespace that is not covered by an
    entity, and auto-detects ``bot_command``, ``mention``, ``hashtag``, ``cashtag``,
    ``url`` and ``email`` entities (URL/e-mail detection is a simplified
    approximation: only URLs with a scheme or ``www.`` are found).

User side (what the test does; all methods are thread-safe)
    ``send_message``, ``press_button``, ``enqueue_update``, ``bot_messages``,
    ``wait_for_bot_messages`` (+ ``_async``), ``wait_until`` (+ ``_async``),
    ``chat_actions``, ``callback_answers``, ``commands``, ``requests``,
    ``fail_next``, ``delay_next``, ``block_bot``...  Do not call the blocking ``wait_*``
    methods from the event loop that runs the bot (it would block the bot); use the
    ``*_async`` variants in async tests - the sync ones raise ``RuntimeError`` there.

Webhooks
    After ``setWebhook(url, secret_token=...)`` new updates are POSTed as JSON to
    ``url`` with ``X-Telegram-Bot-Api-Secret-Token``, retried until the receiver
    answers 2xx.  Only loopback URLs (``127.0.0.0/8``, ``::1``, ``localhost``) are
    accepted so that tests never send traffic off the machine; ``http`` is allowed
    (Telegram itself requires ``https`` on ports 443/80/88/8443).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import ipaddress
import itertools
import json
import logging
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "BotMessage",
    "EntityParseError",
    "FakeTelegram",
    "RecordedRequest",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]

_LOG = logging.getLogger("fake_telegram")

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # "The photo must be at most 10 MB in size."
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile: "bots can download files of up to 20 MB"
MAX_UPLOAD_BYTES = 2000 * 1024 * 1024  # what a user's client can send (2 GB)
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200

# ---------------------------------------------------------------------------------------
# UTF-16 helpers
# ---------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _u16w(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


class _U16Index:
    """Maps Python string indices to UTF-16 offsets and back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._prefix: list[int] | None = None
        if any(ord(ch) > 0xFFFF for ch in text):
            prefix = [0]
            for ch in text:
                prefix.append(prefix[-1] + _u16w(ch))
            self._prefix = prefix

    def to_u16(self, index: int) -> int:
        return index if self._prefix is None else self._prefix[index]

    def to_index(self, u16: int) -> int:
        if self._prefix is None:
            return min(u16, len(self.text))
        for i, value in enumerate(self._prefix):
            if value >= u16:
                return i
        return len(self.text)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------------------------------
# Entity parsing (ports of TDLib's parse_html / parse_markdown_v2 / parse_markdown)
# ---------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised when text cannot be parsed; ``str(exc)`` is Telegram's description tail.

    The Bot API reports it as ``Bad Request: can't parse entities: <message>``.
    """


_HTML_SPACES = " \t\r\n\v\f"
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SIMPLE = {
    "i": "italic",
    "em": "italic",
    "b": "bold",
    "strong": "bold",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode ``&...`` at ``pos`` like TDLib; returns (char or None, position after)."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and "0" <= text[end] <= "9":
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None, pos
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        found = _NAMED_HTML_ENTITIES.get(text[pos + 1 : end])
        if found is None:
            return None, pos
        char = found
    if end < n and text[end] == ";":
        end += 1
    return char, end


def _link_user_id(url: str) -> int | None:
    match = re.fullmatch(r"tg://user\?id=(\d+)", url.strip(), re.IGNORECASE)
    return int(match.group(1)) if match else None


def _checked_link(url: str) -> str:
    """Approximation of TDLib's LinkManager::get_checked_link ('' = invalid)."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return ""
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.\-]*):", url)
    if match:
        scheme = match.group(1).lower()
        if scheme in ("http", "https", "ftp"):
            return url if re.match(r"[a-zA-Z]+://[^/?#:@]+", url) else ""
        if scheme in ("tg", "ton", "tonsite"):
            return url
        if not re.match(r"[a-zA-Z0-9.\-]+:\d+", url):  # "host:port" is not a scheme
            return ""
    if re.fullmatch(
        r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+(?::\d+)?(?:[/?#]\S*)?",
        url,
    ):
        return "http://" + url
    return ""


def _link_entity(offset: int, length: int, url: str) -> dict[str, Any] | None:
    user_id = _link_user_id(url)
    if user_id is not None:
        return {
            "type": "text_mention",
            "offset": offset,
            "length": length,
            "user": {"id": user_id, "is_bot": False, "first_name": ""},
        }
    checked = _checked_link(url)
    if not checked:
        return None
    return {"type": "text_link", "offset": offset, "length": length, "url": checked}


def parse_html(text: str, *, strict_ampersand: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into ``(plain_text, entities)``.

    A port of TDLib's ``parse_html`` (the code behind ``parse_mode=HTML``), including
    its error messages.  Entity offsets/lengths are in UTF-16 code units.  With
    ``strict_ampersand`` a ``&`` that is not a valid entity is an error.
    """
    n = len(text)
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    # (tag_name, argument, entity_offset_u16, begin index into out, expandable)
    stack: list[tuple[str, str, int, int, bool]] = []

    def err(message: str) -> EntityParseError:
        return EntityParseError(message)

    def decode_or_fail(pos: int) -> tuple[str | None, int]:
        char, new_pos = _decode_html_entity(text, pos)
        if char is None and strict_ampersand:
            raise err(
                f'Character "&" at byte offset {_byte_offset(text, pos)} must be escaped '
                'as "&amp;" (fake_telegram strict mode; Telegram would show it literally)'
            )
        return char, new_pos

    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            char, new_i = decode_or_fail(i)
            if char is not None:
                if 0xD800 <= ord(char) <= 0xDFFF:
                    raise err(
                        "Text contains invalid Unicode characters after decoding HTML "
                        "entities, check for unmatched surrogate code units"
                    )
                out.append(char)
                u16 += _u16w(char)
                i = new_i
                continue
        if c != "<":
            out.append(c)
            u16 += _u16w(c)
            i += 1
            continue

        begin = i
        i += 1
        if i >= n or text[i] != "/":
            # start tag
            while i < n and text[i] not in _HTML_SPACES and text[i] != ">":
                i += 1
            if i >= n:
                raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise err(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            argument = ""
            expandable = False
            while i < n and text[i] != ">":
                while i < n and text[i] in _HTML_SPACES:
                    i += 1
                if i < n and text[i] == ">":
                    break
                attr_begin = i
                while i < n and text[i] not in _HTML_SPACES and text[i] not in "=>":
                    i += 1
                attr_name = text[attr_begin:i].lower()
                if not attr_name:
                    raise err(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{_byte_offset(text, begin)}"
                    )
                while i < n and text[i] in _HTML_SPACES:
                    i += 1
                if i >= n or text[i] != "=":
                    if tag == "blockquote" and attr_name == "expandable":
                        expandable = True
                        continue
                    raise err(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                i += 1
                while i < n and text[i] in _HTML_SPACES:
                    i += 1
                if i >= n:
                    raise err(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if text[i] not in "'\"":
                    token_begin = i
                    while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i < n and text[i] not in _HTML_SPACES and text[i] != ">":
                        raise err(
                            "Unexpected end of name token at byte offset "
                            f"{_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    buf: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            char, new_i = decode_or_fail(i)
                            if char is not None:
                                buf.append(char)
                                i = new_i
                                continue
                        buf.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(buf)
                if i >= n:
                    raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    expandable = True
            if tag == "span" and argument != "spoiler":
                raise err(
                    'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            stack.append((tag, argument, u16, len(out), expandable))
            i += 1  # skip '>'
            continue

        # end tag
        if not stack:
            raise err(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        name_begin = i
        while i < n and text[i] not in _HTML_SPACES and text[i] != ">":
            i += 1
        end_name = text[name_begin:i].lower()
        while i < n and text[i] in _HTML_SPACES:
            i += 1
        if i >= n or text[i] != ">":
            raise err(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        tag, argument, offset, out_begin, expandable = stack.pop()
        if end_name and end_name != tag:
            raise err(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{tag}>", found "</{end_name}>"'
            )
        length = u16 - offset
        if length <= 0:
            continue
        if tag in _HTML_SIMPLE:
            entities.append({"type": _HTML_SIMPLE[tag], "offset": offset, "length": length})
        elif tag == "tg-emoji":
            if not argument.isdigit() or int(argument) == 0:
                raise err("Invalid custom emoji identifier specified")
            entities.append(
                {
                    "type": "custom_emoji",
                    "offset": offset,
                    "length": length,
                    "custom_emoji_id": argument,
                }
            )
        elif tag == "a":
            url = argument or "".join(out[out_begin:])
            link = _link_entity(offset, length, url)
            if link is not None:
                entities.append(link)
        elif tag == "pre":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "code"
                and (last["offset"], last["length"]) == (offset, length)
                and last.get("_language")
            ):
                last["type"] = "pre"
                last["language"] = last.pop("_language")
            else:
                entities.append({"type": "pre", "offset": offset, "length": length})
        elif tag == "code":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "pre"
                and (last["offset"], last["length"]) == (offset, length)
                and argument
            ):
                last["language"] = argument
            else:
                entity = {"type": "code", "offset": offset, "length": length}
                if argument:
                    entity["_language"] = argument
                entities.append(entity)
        elif tag == "blockquote":
            kind = "expandable_blockquote" if expandable else "blockquote"
            entities.append({"type": kind, "offset": offset, "length": length})
    if stack:
        raise err(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    for entity in entities:
        entity.pop("_language", None)
    return "".join(out), _sort_entities(entities)


_MDV2_TYPE = {
    "Bold": "bold",
    "Italic": "italic",
    "Underline": "underline",
    "Strikethrough": "strikethrough",
    "Spoiler": "spoiler",
    "Code": "code",
    "Pre": "pre",
    "PreCode": "pre",
    "BlockQuote": "blockquote",
}


@dataclasses.dataclass
class _MdEntity:
    type: str
    argument: str
    offset: int
    byte_index: int
    begin: int


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``parse_mode=MarkdownV2`` text into ``(plain_text, entities)`` (TDLib port)."""
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    def reserved_error(ch: str) -> EntityParseError:
        return EntityParseError(
            f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        )

    def read_url(start: int) -> tuple[str, int]:
        k = start
        buf: list[str] = []
        while k < n and text[k] != ")":
            if text[k] == "\\" and "\0" < at(k + 1) <= "~":
                buf.append(text[k + 1])
                k += 2
                continue
            buf.append(text[k])
            k += 1
        return "".join(buf), k

    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[_MdEntity] = []
    have_blockquote = False
    i = -1
    while True:
        i += 1
        if i >= n:
            break
        c = text[i]
        if c == "\\" and "\0" < at(i + 1) <= "~":
            i += 1
            u16 += 1
            out.append(text[i])
            continue
        reserved = "_*[]()~`>#+-=|{}.!\n"
        if stack and stack[-1].type in ("Code", "Pre", "PreCode"):
            reserved = "`"
        if c not in reserved:
            out.append(c)
            u16 += _u16w(c)
            continue

        is_end = False
        if stack:
            top = stack[-1].type
            if have_blockquote and c == "\n" and (i + 1 == n or text[i + 1] != ">"):
                is_end = True
            elif top == "Bold":
                is_end = c == "*"
            elif top == "Italic":
                is_end = c == "_" and at(i + 1) != "_"
            elif top == "Code":
                is_end = c == "`"
            elif top in ("Pre", "PreCode"):
                is_end = c == "`" and at(i + 1) == "`" and at(i + 2) == "`"
            elif top in ("TextUrl", "CustomEmoji"):
                is_end = c == "]"
            elif top == "Underline":
                is_end = c == "_" and at(i + 1) == "_"
            elif top == "Strikethrough":
                is_end = c == "~"
            elif top == "Spoiler":
                is_end = c == "|" and at(i + 1) == "|"

        if not is_end:
            argument = ""
            byte_index = i
            kind: str | None
            if c == "_":
                if at(i + 1) == "_":
                    kind = "Underline"
                    i += 1
                else:
                    kind = "Italic"
            elif c == "*":
                kind = "Bold"
            elif c == "~":
                kind = "Strikethrough"
            elif c == "|":
                if at(i + 1) != "|":
                    raise reserved_error(c)
                i += 1
                kind = "Spoiler"
            elif c == "[":
                kind = "TextUrl"
            elif c == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    kind = "Pre"
                    language_end = i
                    while (
                        language_end < n
                        and text[language_end] not in _HTML_SPACES
                        and text[language_end] != "`"
                    ):
                        language_end += 1
                    if i != language_end and language_end < n and text[language_end] != "`":
                        kind = "PreCode"
                        argument = text[i:language_end]
                        i = language_end
                    if i < n and text[i] in "\n\r":
                        if at(i + 1) in "\n\r" and text[i] != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    kind = "Code"
            elif c == "!":
                if at(i + 1) != "[":
                    raise reserved_error(c)
                i += 1
                kind = "CustomEmoji"
            elif c == "\n":
                u16 += 1
                out.append("\n")
                kind = None
                if i + 1 < n and text[i + 1] == ">":
                    i += 1
                    if not have_blockquote:
                        kind = "BlockQuote"
                        have_blockquote = True
            elif c == ">":
                if i != 0:
                    raise reserved_error(c)
                kind = "BlockQuote"
                have_blockquote = True
            else:
                raise reserved_error(c)
            if kind is None:
                continue
            stack.append(_MdEntity(kind, argument, u16, byte_index, len(out)))
            continue

        top_entity = stack[-1]
        kind = top_entity.type
        if c == "\n" and kind != "BlockQuote":
            raise EntityParseError(
                f"Can't find end of {kind} entity at byte offset "
                f"{_byte_offset(text, top_entity.byte_index)}"
            )
        argument = top_entity.argument
        skip = u16 == top_entity.offset
        entity: dict[str, Any] | None = None
        if kind in ("Underline", "Spoiler"):
            i += 1
        elif kind in ("Pre", "PreCode"):
            i += 2
        elif kind == "TextUrl":
            if at(i + 1) != "(":
                url = "".join(out[top_entity.begin :])
            else:
                url_begin = i + 2
                url, i = read_url(url_begin)
                if at(i) != ")":
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
            if not skip:
                entity = _link_entity(top_entity.offset, u16 - top_entity.offset, url)
                skip = entity is None
        elif kind == "CustomEmoji":
            if at(i + 1) != "(":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            url_begin = i + 2
            url, i = read_url(url_begin)
            if at(i) != ")":
                raise EntityParseError(
                    "Can't find end of a custom emoji URL at byte offset "
                    f"{_byte_offset(text, url_begin)}"
                )
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
            if not match or int(match.group(1)) == 0:
                raise EntityParseError("Invalid custom emoji identifier specified")
            entity = {
                "type": "custom_emoji",
                "offset": top_entity.offset,
                "length": u16 - top_entity.offset,
                "custom_emoji_id": match.group(1),
            }
        elif kind == "BlockQuote":
            have_blockquote = False
            out.append(c)
            u16 += 1
        if not skip:
            if entity is None:
                entity = {
                    "type": _MDV2_TYPE[kind],
                    "offset": top_entity.offset,
                    "length": u16 - top_entity.offset,
                }
                if kind == "PreCode":
                    entity["language"] = argument
            entities.append(entity)
        stack.pop()

    if have_blockquote and stack and stack[-1].type == "BlockQuote":
        top_entity = stack.pop()
        if u16 != top_entity.offset:
            length = u16 - top_entity.offset
            entities.append({"type": "blockquote", "offset": top_entity.offset, "length": length})
    if stack:
        raise EntityParseError(
            f"Can't find end of {stack[-1].type} entity at byte offset "
            f"{_byte_offset(text, stack[-1].byte_index)}"
        )
    return "".join(out), _sort_entities(entities)


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse legacy ``parse_mode=Markdown`` text (TDLib port)."""
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    i = -1
    while True:
        i += 1
        if i >= n:
            break
        c = text[i]
        if c == "\\" and at(i + 1) in ("_", "*", "`", "["):
            i += 1
            out.append(text[i])
            u16 += 1
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += _u16w(c)
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        language = ""
        i += 1
        if c == "`" and at(i) == "`" and at(i + 1) == "`":
            i += 2
            is_pre = True
            language_end = i
            while language_end < n and text[language_end] not in _HTML_SPACES + "`":
                language_end += 1
            if i != language_end and language_end < n and text[language_end] != "`":
                language = text[i:language_end]
                i = language_end
            if i < n and text[i] in "\n\r":
                if at(i + 1) in "\n\r" and text[i] != at(i + 1):
                    i += 2
                else:
                    i += 1
        offset = u16
        while i < n and (
            text[i] != end_char or (is_pre and not (at(i + 1) == "`" and at(i + 2) == "`"))
        ):
            out.append(text[i])
            u16 += _u16w(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        if offset != u16:
            length = u16 - offset
            if c == "_":
                entities.append({"type": "italic", "offset": offset, "length": length})
            elif c == "*":
                entities.append({"type": "bold", "offset": offset, "length": length})
            elif c == "[":
                if at(i + 1) != "(":
                    url = text[begin + 1 : i]
                else:
                    i += 2
                    url_chars: list[str] = []
                    while i < n and text[i] != ")":
                        url_chars.append(text[i])
                        i += 1
                    url = "".join(url_chars)
                link = _link_entity(offset, length, url)
                if link is not None:
                    entities.append(link)
            elif is_pre:
                entity: dict[str, Any] = {"type": "pre", "offset": offset, "length": length}
                if language:
                    entity["language"] = language
                entities.append(entity)
            else:
                entities.append({"type": "code", "offset": offset, "length": length})
        if is_pre:
            i += 2
    return "".join(out), _sort_entities(entities)


_ENTITY_PRIORITY = {
    "mention": 50,
    "hashtag": 50,
    "bot_command": 50,
    "url": 50,
    "email": 50,
    "bold": 90,
    "italic": 91,
    "code": 20,
    "pre": 11,
    "text_link": 49,
    "text_mention": 49,
    "cashtag": 50,
    "phone_number": 50,
    "underline": 92,
    "strikethrough": 93,
    "blockquote": 0,
    "expandable_blockquote": 0,
    "spoiler": 94,
    "custom_emoji": 99,
}
_ENTITY_TYPES = frozenset(_ENTITY_PRIORITY)
_SPLITTABLE = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_BLOCKQUOTES = frozenset({"blockquote", "expandable_blockquote"})


def _sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        entities,
        key=lambda e: (e["offset"], -e["length"], _ENTITY_PRIORITY.get(e["type"], 50)),
    )


def _fix_nesting(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop entities Telegram does not allow to nest (e.g. bold inside code)."""
    kept: list[dict[str, Any]] = []
    for entity in _sort_entities(entities):
        start, end = entity["offset"], entity["offset"] + entity["length"]
        drop = False
        for outer in kept:
            o_start, o_end = outer["offset"], outer["offset"] + outer["length"]
            if not (o_start <= start and end <= o_end):
                continue
            same_range = (o_start, o_end) == (start, end)
            if outer["type"] in ("code", "pre"):
                drop = not (same_range and entity["type"] in _SPLITTABLE)
            elif outer["type"] in _BLOCKQUOTES:
                drop = entity["type"] in _BLOCKQUOTES
            elif outer["type"] not in _SPLITTABLE:
                drop = entity["type"] not in _SPLITTABLE and entity["type"] != "custom_emoji"
            if drop:
                break
        if not drop:
            kept.append(entity)
    return kept


_VISIBLE_ON_WHITESPACE = frozenset(
    {"code", "pre", "text_link", "text_mention", "underline", "strikethrough", "custom_emoji"}
)


def _drop_whitespace_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop entities that only cover whitespace and would be invisible (like TDLib)."""
    if not entities:
        return entities
    encoded = text.encode("utf-16-le", "surrogatepass")
    kept = []
    for entity in entities:
        start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
        covered = encoded[start:end].decode("utf-16-le", "surrogatepass")
        if covered.strip() or entity["type"] in _VISIBLE_ON_WHITESPACE:
            kept.append(entity)
    return kept


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace that no entity covers, shifting entities."""
    index = _U16Index(text)
    first = min((e["offset"] for e in entities), default=None)
    last = max((e["offset"] + e["length"] for e in entities), default=None)
    start = 0
    while (
        start < len(text)
        and text[start].isspace()
        and (first is None or index.to_u16(start) < first)
    ):
        start += 1
    end = len(text)
    while end > start and text[end - 1].isspace() and (last is None or index.to_u16(end) > last):
        end -= 1
    if start == 0 and end == len(text):
        return text, entities
    shift = index.to_u16(start)
    new_length = index.to_u16(end) - shift
    fixed = []
    for entity in entities:
        e_start = max(entity["offset"] - shift, 0)
        e_end = min(entity["offset"] + entity["length"] - shift, new_length)
        if e_end > e_start:
            fixed.append({**entity, "offset": e_start, "length": e_end - e_start})
    return text[start:end], fixed


def _is_word_char(ch: str) -> bool:
    return ch == "_" or unicodedata.category(ch)[0] in "LN"


def _is_hashtag_char(ch: str) -> bool:
    code = ord(ch)
    if ch == "_" or code in (0x200C, 0xB7) or 0xD80 <= code <= 0xDFF:
        return True
    category = unicodedata.category(ch)
    return category[0] == "L" or category == "Nd"


def _is_ascii_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


_URL_RE = re.compile(r"(?i)(?<![\w@.])(?:(?:https?|ftp|tg|ton)://|www\.)[^\s<>\"]+")
_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w@])"
)


def _find_entities(text: str) -> list[dict[str, Any]]:
    """Auto-detect url/email/bot_command/mention/hashtag/cashtag like Telegram does."""
    spans: list[tuple[int, int, str]] = []

    def add(start: int, end: int, kind: str) -> None:
        if all(end <= s or start >= e for s, e, _ in spans):
            spans.append((start, end, kind))

    for match in _URL_RE.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in ".,;:!?'":
            end -= 1
        if text[end - 1] == ")" and text.count("(", start, end) < text.count(")", start, end):
            end -= 1
        add(start, end, "url")
    for match in _EMAIL_RE.finditer(text):
        add(match.start(), match.end(), "email")

    n = len(text)
    # bot commands: (?<!\b|[\/<>])\/([a-zA-Z0-9_]{1,64})(?:@([a-zA-Z0-9_]{3,32}))?(?!\B|[\/<>])
    for pos in (k for k, ch in enumerate(text) if ch == "/"):
        if pos > 0 and (_is_word_char(text[pos - 1]) or text[pos - 1] in "/<>"):
            continue
        k = pos + 1
        while k < n and _is_ascii_word(text[k]):
            k += 1
        if not 1 <= k - pos - 1 <= 64:
            continue
        if k < n and text[k] == "@":
            m = k + 1
            while m < n and _is_ascii_word(text[m]):
                m += 1
            if not 3 <= m - k - 1 <= 32:
                continue
            k = m
        if k < n and (_is_word_char(text[k]) or text[k] in "/<>"):
            continue
        add(pos, k, "bot_command")
    # mentions: @username, 5-32 characters
    for pos in (k for k, ch in enumerate(text) if ch == "@"):
        if pos > 0 and _is_word_char(text[pos - 1]):
            continue
        k = pos + 1
        while k < n and _is_ascii_word(text[k]):
            k += 1
        if not 5 <= k - pos - 1 <= 32 or (k < n and _is_word_char(text[k])):
            continue
        add(pos, k, "mention")
    # hashtags
    for pos in (k for k, ch in enumerate(text) if ch == "#"):
        if pos > 0 and _is_hashtag_char(text[pos - 1]):
            continue
        k = pos + 1
        while k < n and _is_hashtag_char(text[k]):
            k += 1
        body = text[pos + 1 : k]
        if not body or (k < n and text[k] == "#"):
            continue
        if not any(unicodedata.category(ch)[0] == "L" for ch in body):
            continue
        add(pos, min(k, pos + 1 + 256), "hashtag")
    # cashtags
    for pos in (k for k, ch in enumerate(text) if ch == "$"):
        if pos > 0 and (_is_hashtag_char(text[pos - 1]) or text[pos - 1] == "$"):
            continue
        k = pos + 1
        if text.startswith("1INCH", k):
            k += 5
        else:
            while k < n and "A" <= text[k] <= "Z":
                k += 1
        if not 1 <= k - pos - 1 <= 8:
            continue
        if k < n and (_is_hashtag_char(text[k]) or text[k] == "$"):
            continue
        add(pos, k, "cashtag")

    index = _U16Index(text)
    found = []
    for start, end, kind in spans:
        u_start = index.to_u16(start)
        found.append({"type": kind, "offset": u_start, "length": index.to_u16(end) - u_start})
    return _sort_entities(found)


def _merge_entities(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add auto-detected entities that do not intersect explicit ones (TDLib semantics)."""
    merged = list(old)
    for entity in new:
        start, end = entity["offset"], entity["offset"] + entity["length"]
        if all(end <= o["offset"] or start >= o["offset"] + o["length"] for o in old):
            merged.append(entity)
    return _sort_entities(merged)


# ---------------------------------------------------------------------------------------
# Records exposed to tests
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """One Bot API call as the fake received it.

    ``params`` are decoded: JSON-encoded fields (``reply_markup``, ``entities``,
    ``commands``, ``scope``...) are parsed, integer and boolean fields are converted.
    ``status`` is the HTTP status of the answer and ``response`` the JSON body
    (``None`` while a long poll is still pending).  ``client_gone`` is true when the
    client had already closed the connection (e.g. PTB cancelling its long poll on
    shutdown), so the answer never reached it.
    """

    method: str
    params: dict[str, Any]
    time: float
    status: int | None = None
    response: dict[str, Any] | None = None
    client_gone: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))


@dataclasses.dataclass
class BotMessage:
    """Snapshot of a message the bot sent, in its current (possibly edited) state.

    ``message`` is the Telegram ``Message`` object as ``getUpdates`` consumers would see
    it; ``raw_text``/``parse_mode`` are what the bot sent; ``reply_markup`` is the markup
    the bot sent (also reply keyboards, which Telegram does not echo in ``message``);
    ``history`` holds the earlier versions of ``message`` (one per edit).
    """

    chat_id: int
    message_id: int
    text: str | None
    entities: list[dict[str, Any]]
    parse_mode: str | None
    raw_text: str | None
    reply_markup: dict[str, Any] | None
    message: dict[str, Any]
    history: list[dict[str, Any]]
    deleted: bool = False

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.message.get("reply_markup") or {}
        return markup.get("inline_keyboard", [])

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """All inline keyboard buttons, row by row, flattened."""
        return [button for row in self.inline_keyboard for button in row]

    @property
    def button_texts(self) -> list[str]:
        return [button.get("text", "") for button in self.buttons]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def entity_texts(self, kind: str | None = None) -> list[str]:
        """The text covered by each entity (optionally only of type ``kind``)."""
        if self.text is None:
            return []
        encoded = self.text.encode("utf-16-le")
        return [
            encoded[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
            for e in self.entities
            if kind is None or e["type"] == kind
        ]


@dataclasses.dataclass
class _StoredMessage:
    message: dict[str, Any]
    from_bot: bool
    raw_text: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deleted: bool = False


@dataclasses.dataclass
class _Injected:
    method: str  # lower-case method name or "*"
    remaining: int
    error_code: int = 0
    description: str = ""
    parameters: dict[str, Any] | None = None
    delay: float = 0.0


class _ApiError(Exception):
    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(text: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {text}")


_DEFAULT_ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
    "instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_JSON_FIELDS = {
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "entities": "can't parse entities JSON object",
    "caption_entities": "can't parse entities JSON object",
    "allowed_updates": "can't parse allowed updates JSON object",
    "commands": "can't parse commands JSON object",
    "scope": "can't parse BotCommandScope JSON object",
    "reply_parameters": "can't parse reply parameters JSON object",
    "link_preview_options": "can't parse link preview options JSON object",
    "menu_button": "can't parse menu button JSON object",
}
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "user_id",
        "offset",
        "limit",
        "message_thread_id",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "from_chat_id",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "allow_paid_broadcast",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
_DEFAULT_ALLOWED_UPDATES = _UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF or WebP image; None if it is not one."""
    import struct

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + length
    return None


def _decode_params(raw: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_FIELDS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _bad_request(_JSON_FIELDS[key]) from None
        elif key in _INT_FIELDS and isinstance(value, str):
            if re.fullmatch(r"\s*-?\d+\s*", value):
                value = int(value)
        elif key in _BOOL_FIELDS and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                value = True
            elif lowered in ("false", "0", ""):
                value = False
        decoded[key] = value
    return decoded


def _as_int(value: Any, name: str, *, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise _bad_request(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(float(value.strip()))
    raise _bad_request(f"invalid {name} specified")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------
# The fake server
# ---------------------------------------------------------------------------------------


class FakeTelegram:
    """In-process fake Telegram Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_username: str = "test_bot",
        bot_first_name: str = "Test Bot",
        privacy_mode: bool = True,
        strict_html_ampersand: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        match = re.fullmatch(r"(\d+):[A-Za-z0-9_-]+", token)
        if not match:
            raise ValueError(f"not a Telegram-shaped bot token: {token!r}")
        self.token = token
        self.privacy_mode = privacy_mode
        self.strict_html_ampersand = strict_html_ampersand
        self.webhook_retry_delay = webhook_retry_delay
        self._host = host
        self._requested_port = port
        self._bot_user: dict[str, Any] = {
            "id": int(match.group(1)),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100001)
        self._allowed_updates: frozenset[str] = _DEFAULT_ALLOWED_UPDATES
        self._undelivered: list[tuple[dict[str, Any], str]] = []
        self._chats: dict[int, dict[str, Any]] = {}
        self._photos: dict[str, bytes] = {}
        self._files: dict[str, tuple[bytes, int]] = {}  # file_id -> (bytes, declared size)
        self._file_paths: dict[str, str] = {}  # file_path -> file_id
        self._users: dict[int, dict[str, Any]] = {}
        self._last_user_in_chat: dict[int, int] = {}
        self._messages: dict[int, dict[int, _StoredMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._chat_actions: dict[int, list[str]] = {}
        self._callback_queries: dict[str, dict[str, Any]] = {}
        self._answered_queries: set[str] = set()
        self._callback_answers: list[dict[str, Any]] = []
        self._callback_ids = itertools.count(4242000000000000001)
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._settings: dict[str, Any] = {}
        self._requests: list[RecordedRequest] = []
        self._injected: list[_Injected] = []
        self._blocked: set[int] = set()
        self._webhook: dict[str, Any] = {}
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_deliveries: list[dict[str, Any]] = []
        self._poll_generation = 0
        self._closing = False
        self._close_calls = 0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._updates_event: asyncio.Event | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._client: aiohttp.ClientSession | None = None
        self._started = False
        self._stopped = False

        self._handlers: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {}
        for name, func in (
            ("getMe", self._api_get_me),
            ("sendMessage", self._api_send_message),
            ("sendPhoto", self._api_send_photo),
            ("getFile", self._api_get_file),
            ("sendChatAction", self._api_send_chat_action),
            ("editMessageText", self._api_edit_message_text),
            ("editMessageReplyMarkup", self._api_edit_message_reply_markup),
            ("deleteMessage", self._api_delete_message),
            ("answerCallbackQuery", self._api_answer_callback_query),
            ("setMyCommands", self._api_set_my_commands),
            ("getMyCommands", self._api_get_my_commands),
            ("deleteMyCommands", self._api_delete_my_commands),
            ("setWebhook", self._api_set_webhook),
            ("deleteWebhook", self._api_delete_webhook),
            ("getWebhookInfo", self._api_get_webhook_info),
            ("close", self._api_close),
            ("setMyDescription", self._setting_setter("description", "description")),
            ("getMyDescription", self._setting_getter("description", "description")),
            (
                "setMyShortDescription",
                self._setting_setter("short_description", "short_description"),
            ),
            (
                "getMyShortDescription",
                self._setting_getter("short_description", "short_description"),
            ),
            ("setChatMenuButton", self._api_set_chat_menu_button),
            ("getChatMenuButton", self._api_get_chat_menu_button),
        ):
            self._handlers[name.lower()] = (name, func)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Start the server thread; returns self.  Blocks until the port is listening."""
        with self._lock:
            if self._started:
                raise RuntimeError("FakeTelegram can only be started once")
            self._started = True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self._port = sock.getsockname()[1]

        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._setup())
            except BaseException as exc:  # pragma: no cover - startup failure
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="FakeTelegram", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise RuntimeError("FakeTelegram failed to start") from failure[0]
        _LOG.debug("FakeTelegram listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop the server, waking pending long polls.  Safe to call twice."""
        with self._lock:
            if not self._started or self._stopped:
                return
            self._stopped = True
            self._closing = True
            self._cond.notify_all()
        loop = self._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(self._teardown(), loop)
        try:
            future.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            loop.close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeTelegram:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    async def _setup(self) -> None:
        self._updates_event = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        assert self._socket is not None
        site = web.SockSite(self._runner, self._socket)
        await site.start()

    async def _teardown(self) -> None:
        self._wake_pollers()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:12345``."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url()``: ``http://127.0.0.1:<port>/bot``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url()``."""
        return f"{self.url}/file/bot"

    @property
    def api_url(self) -> str:
        """``base_url`` + token + ``/``: append a method name to call the API directly."""
        return f"{self.base_url}{self.token}/"

    @property
    def bot_user(self) -> dict[str, Any]:
        return dict(self._bot_user)

    @property
    def bot_username(self) -> str:
        return self._bot_user["username"]

    # -- HTTP layer --------------------------------------------------------------------------

    @staticmethod
    def _json_response(body: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )

    def _check_token(self, token: str) -> _ApiError | None:
        if token == self.token:
            return None
        if re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            return _ApiError(401, "Unauthorized")
        return _ApiError(404, "Not Found")

    async def _handle_file(self, request: web.Request) -> web.Response:
        """File downloads: /file/bot<token>/<file_path> as returned by getFile."""
        error = self._check_token(request.match_info["token"])
        if error is None:
            with self._lock:
                file_id = self._file_paths.get(request.match_info["path"])
                data = self._files[file_id][0] if file_id else None
            if data is not None:
                with self._lock:
                    self._requests.append(
                        RecordedRequest(
                            "download",
                            {"file_path": request.match_info["path"]},
                            time.time(),
                            200,
                            None,
                        )
                    )
                return web.Response(body=data, content_type="application/octet-stream")
            error = _ApiError(404, "Not Found")
        return self._json_response(error.body(), error.error_code)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if not request.body_exists:
            return params
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad_request("can't parse JSON request body") from None
            if not isinstance(body, dict):
                raise _bad_request("JSON request body must be an object")
            params.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    params[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": len(data),
                        "data": data,
                    }
                else:
                    params[key] = value
        else:
            raw = await request.read()
            if raw.strip():
                for key, values in parse_qs(raw.decode("utf-8", "replace")).items():
                    params[key] = values[-1]
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        token_error = self._check_token(request.match_info["token"])
        if token_error is not None:
            return self._json_response(token_error.body(), token_error.error_code)
        method_key = request.match_info["method"].lower()
        handler = self._handlers.get(method_key)
        if handler is None and method_key != "getupdates":
            _LOG.warning("fake_telegram: unsupported method %s", request.match_info["method"])
            with self._lock:
                self._requests.append(
                    RecordedRequest(
                        request.match_info["method"],
                        {},
                        time.time(),
                        404,
                        _ApiError(404, "Not Found").body(),
                    )
                )
            return self._json_response(_ApiError(404, "Not Found").body(), 404)
        method_name = handler[0] if handler else "getUpdates"

        record = RecordedRequest(method_name, {}, time.time())
        with self._lock:
            self._requests.append(record)
        try:
            params = _decode_params(await self._read_params(request))
            with self._lock:
                record.params = params
            await self._apply_injected(method_key)
            if handler is None:
                result = await self._api_get_updates(params)
            else:
                with self._lock:
                    result = handler[1](params)
            body: dict[str, Any] = {"ok": True, "result": result}
            if isinstance(result, tuple):  # (result, description)
                body = {"ok": True, "result": result[0], "description": result[1]}
            status = 200
        except _ApiError as exc:
            body, status = exc.body(), exc.error_code
        transport = request.transport
        with self._lock:
            record.client_gone = transport is None or transport.is_closing()
            record.status = status
            record.response = copy.deepcopy(body)
            self._cond.notify_all()
        if status != 200:
            _LOG.info("fake_telegram: %s -> %s %s", method_name, status, body.get("description"))
        return self._json_response(body, status)

    async def _apply_injected(self, method_key: str) -> None:
        with self._lock:
            matches = [
                inj for inj in self._injected if inj.method in (method_key, "*") and inj.remaining
            ]
            delay_injection = next((inj for inj in matches if inj.delay), None)
            error_injection = next((inj for inj in matches if inj.error_code), None)
            for inj in (delay_injection, error_injection):
                if inj is not None:
                    inj.remaining -= 1
            self._injected = [inj for inj in self._injected if inj.remaining]
        if delay_injection is not None:
            await asyncio.sleep(delay_injection.delay)
        if error_injection is not None:
            raise _ApiError(
                error_injection.error_code,
                error_injection.description,
                error_injection.parameters,
            )

    # -- update queue --------------------------------------------------------------------------

    def _wake_pollers(self) -> None:
        """Wake long polls and the webhook sender (server loop only)."""
        event = self._updates_event
        if event is not None:
            self._updates_event = asyncio.Event()
            event.set()

    def _notify_updates(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_pollers)

    def _privacy_filter(self, update: dict[str, Any]) -> str | None:
        """Reason why privacy mode hides ``update`` from the bot, or None."""
        message = update.get("message")
        if not self.privacy_mode or not isinstance(message, dict):
            return None
        if message.get("chat", {}).get("type") not in ("group", "supergroup"):
            return None
        text = message.get("text") or ""
        for entity in message.get("entities", []):
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                command = text[: entity["length"]]
                _, _, target = command.partition("@")
                if not target or target.lower() == self.bot_username.lower():
                    return None
                return f"privacy mode: command {command!r} is addressed to another bot"
        reply = message.get("reply_to_message")
        if isinstance(reply, dict) and reply.get("from", {}).get("id") == self._bot_user["id"]:
            return None
        return (
            "privacy mode: group messages reach the bot only if they are commands or replies "
            "to its messages (use FakeTelegram(privacy_mode=False) to model an admin bot)"
        )

    def enqueue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw Update (``update_id`` is assigned); returns a copy of it.

        The update is dropped (and listed in ``undelivered``) if its type is not in the
        bot's ``allowed_updates`` or privacy mode hides it, like on Telegram.
        """
        update = copy.deepcopy(update)
        kinds = [key for key in update if key != "update_id"]
        if len(kinds) != 1 or kinds[0] not in _UPDATE_TYPES:
            raise ValueError(f"an Update needs exactly one known update field, got {kinds}")
        with self._lock:
            update["update_id"] = next(self._update_ids)
            allowed = self._webhook.get("allowed_updates_set") or self._allowed_updates
            reason = None
            if kinds[0] not in allowed:
                reason = f"update type {kinds[0]!r} is not in allowed_updates {sorted(allowed)}"
            else:
                reason = self._privacy_filter(update)
            if reason is not None:
                _LOG.info("fake_telegram: update %s not delivered: %s", update["update_id"], reason)
                self._undelivered.append((copy.deepcopy(update), reason))
            else:
                self._updates.append(update)
            self._cond.notify_all()
        self._notify_updates()
        return copy.deepcopy(update)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for the bot and not yet confirmed (via offset or webhook)."""
        with self._lock:
            return copy.deepcopy(self._updates)

    @property
    def undelivered(self) -> list[tuple[dict[str, Any], str]]:
        """(update, reason) for updates that Telegram would not have delivered."""
        with self._lock:
            return copy.deepcopy(self._undelivered)

    async def _api_get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._webhook.get("url"):
                raise _ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use "
                    "deleteWebhook to delete the webhook first",
                )
            offset = _as_int(params.get("offset"), "offset", default=0) or 0
            limit = _as_int(params.get("limit"), "limit", default=100) or 100
            limit = max(1, min(limit, 100))
            timeout = params.get("timeout", 0)
            try:
                timeout_s = max(0.0, float(timeout or 0))
            except (TypeError, ValueError):
                raise _bad_request("invalid timeout specified") from None
            allowed = params.get("allowed_updates")
            if allowed is not None and allowed != "":
                if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
                    raise _bad_request(_JSON_FIELDS["allowed_updates"])
                self._allowed_updates = (
                    frozenset(a for a in allowed if a in _UPDATE_TYPES) or _DEFAULT_ALLOWED_UPDATES
                )
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            self._poll_generation += 1
            generation = self._poll_generation
            batch = self._updates[:limit]
            self._cond.notify_all()
        self._wake_pollers()  # terminates an older long poll with 409

        deadline = loop.time() + timeout_s
        while not batch:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                break
            event = self._updates_event
            assert event is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            terminated: str | None = None
            with self._lock:
                if self._closing:
                    break
                if self._webhook.get("url"):
                    terminated = "Conflict: terminated by setWebhook request"
                elif generation != self._poll_generation:
                    terminated = _DEFAULT_ERROR_DESCRIPTIONS[409]
                else:
                    batch = self._updates[:limit]
            if terminated is not None:
                # Give the loop a moment to notice a client that already hung up (PTB
                # cancels its poll before its final getUpdates), so that the answer is
                # recorded as client_gone rather than as an error the bot saw.
                await asyncio.sleep(0.05)
                raise _ApiError(409, terminated)
        return copy.deepcopy(batch)

    # -- helpers for API handlers -------------------------------------------------------------

    def _resolve_chat(self, params: dict[str, Any], key: str = "chat_id") -> int:
        value = params.get(key)
        if value is None or value == "":
            raise _bad_request("chat_id is empty")
        chat_id: int | None = None
        if isinstance(value, bool):
            chat_id = None
        elif isinstance(value, int):
            chat_id = value
        elif isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("@"):
                for cid, chat in self._chats.items():
                    if (chat.get("username") or "").lower() == stripped[1:].lower():
                        chat_id = cid
            elif re.fullmatch(r"-?\d+", stripped):
                chat_id = int(stripped)
        if chat_id is None or chat_id not in self._chats:
            raise _bad_request("chat not found")
        return chat_id

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _store(self, chat_id: int, stored: _StoredMessage) -> None:
        self._messages.setdefault(chat_id, {})[stored.message["message_id"]] = stored

    def _find_message(self, chat_id: int, message_id: int | None) -> _StoredMessage | None:
        if message_id is None:
            return None
        stored = self._messages.get(chat_id, {}).get(message_id)
        if stored is None or stored.deleted:
            return None
        return stored

    @staticmethod
    def _reply_copy(message: dict[str, Any]) -> dict[str, Any]:
        reply = copy.deepcopy(message)
        reply.pop("reply_to_message", None)
        return reply

    def _format_text(
        self,
        text: Any,
        parse_mode: Any,
        entities: Any,
        too_long: str,
        limit: int = MAX_MESSAGE_LENGTH,
    ) -> tuple[str, list[dict[str, Any]]]:
        if text is None or (isinstance(text, str) and not text.strip()):
            raise _bad_request("message text is empty")
        if not isinstance(text, str):
            text = str(text)
        if entities not in (None, "", []):
            plain = text
            parsed = self._validate_entities(text, entities)
        elif parse_mode:
            mode = str(parse_mode).strip().lower()
            try:
                if mode == "html":
                    plain, parsed = parse_html(text, strict_ampersand=self.strict_html_ampersand)
                elif mode == "markdownv2":
                    plain, parsed = parse_markdown_v2(text)
                elif mode == "markdown":
                    plain, parsed = parse_markdown(text)
                else:
                    raise _bad_request("unsupported parse_mode")
            except EntityParseError as exc:
                raise _bad_request(f"can't parse entities: {exc}") from None
        else:
            plain, parsed = text, []
        parsed = _drop_whitespace_entities(plain, _fix_nesting(parsed))
        plain, parsed = _trim(plain, parsed)
        if not plain:
            raise _bad_request("message text is empty")
        if utf16_len(plain) > limit:
            raise _bad_request(too_long)
        return plain, _merge_entities(parsed, _find_entities(plain))

    @staticmethod
    def _validate_entities(text: str, entities: Any) -> list[dict[str, Any]]:
        if not isinstance(entities, list):
            raise _bad_request(_JSON_FIELDS["entities"])
        total = utf16_len(text)
        result = []
        for entity in entities:
            if not isinstance(entity, dict) or entity.get("type") not in _ENTITY_TYPES:
                raise _bad_request(_JSON_FIELDS["entities"])
            offset, length = entity.get("offset"), entity.get("length")
            if not isinstance(offset, int) or not isinstance(length, int):
                raise _bad_request(_JSON_FIELDS["entities"])
            if offset < 0 or length <= 0 or offset >= total:
                continue
            result.append({**entity, "length": min(length, total - offset)})
        return _sort_entities(result)

    @staticmethod
    def _validate_reply_markup(markup: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Returns (markup as sent, inline markup to echo in the Message)."""
        if markup is None or markup == "":
            return None, None
        bad = _bad_request("can't parse reply keyboard markup JSON object")
        if not isinstance(markup, dict):
            raise bad
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request(
                    'can\'t parse inline keyboard button: Field "inline_keyboard" of the '
                    "InlineKeyboardMarkup must be an Array of Arrays"
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad_request(
                            "can't parse inline keyboard button: InlineKeyboardButton must "
                            'be an Object with a String field "text"'
                        )
                    actions = [key for key in _BUTTON_ACTIONS if key in button]
                    if not actions:
                        raise _bad_request(
                            "can't parse inline keyboard button: Text buttons are unallowed "
                            "in the inline keyboard"
                        )
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if (
                            not isinstance(data, str)
                            or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                        ):
                            raise _bad_request("BUTTON_DATA_INVALID")
                    if "url" in button:
                        url = button["url"]
                        if not isinstance(url, str) or not (
                            _checked_link(url) or _link_user_id(url) is not None
                        ):
                            raise _bad_request("BUTTON_URL_INVALID")
            return markup, {"inline_keyboard": copy.deepcopy(rows)}
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad
            for row in rows:
                for button in row:
                    if isinstance(button, str):
                        continue
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise bad
            return markup, None
        if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
            return markup, None
        raise bad

    # -- Bot API methods ------------------------------------------------------------------------

    def _api_get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _api_send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._resolve_chat(params)
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        text, entities = self._format_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            "message is too long",
        )
        sent_markup, inline_markup = self._validate_reply_markup(params.get("reply_markup"))

        reply_parameters = params.get("reply_parameters")
        reply_to: int | None = None
        allow_without_reply = _as_bool(params.get("allow_sending_without_reply", False))
        if isinstance(reply_parameters, dict):
            reply_to = _as_int(reply_parameters.get("message_id"), "message_id")
            allow_without_reply = _as_bool(
                reply_parameters.get("allow_sending_without_reply", allow_without_reply)
            )
            if reply_parameters.get("chat_id") not in (None, chat_id, str(chat_id)):
                raise _bad_request("replies to other chats are not supported by fake_telegram")
        elif reply_parameters not in (None, ""):
            raise _bad_request(_JSON_FIELDS["reply_parameters"])
        if reply_to is None:
            reply_to = _as_int(params.get("reply_to_message_id"), "reply_to_message_id")
        replied = self._find_message(chat_id, reply_to)
        if reply_to is not None and replied is None and not allow_without_reply:
            raise _bad_request("message to be replied not found")

        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self._bot_user),
            "chat": dict(self._chats[chat_id]),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if replied is not None:
            message["reply_to_message"] = self._reply_copy(replied.message)
        if inline_markup is not None:
            message["reply_markup"] = inline_markup
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = params["message_thread_id"]
        self._store(
            chat_id,
            _StoredMessage(
                message=message,
                from_bot=True,
                raw_text=params.get("text"),
                parse_mode=params.get("parse_mode") or None,
                reply_markup=copy.deepcopy(sent_markup),
            ),
        )
        self._cond.notify_all()
        return copy.deepcopy(message)

    def _api_send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendPhoto with a multipart upload, checked as Telegram checks photos."""
        chat_id = self._resolve_chat(params)
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        photo = params.get("photo")
        if not isinstance(photo, dict) or "data" not in photo:
            # file_id and URL photos are not modelled: the fake has no files to refer to.
            raise _bad_request("wrong remote file identifier specified: can't unserialize it")
        data: bytes = photo["data"]
        if len(data) > MAX_PHOTO_BYTES:
            raise _ApiError(413, "Request Entity Too Large")
        size = image_size(data)
        if size is None:
            raise _bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000 or max(width, height) > 20 * min(width, height):
            raise _bad_request("PHOTO_INVALID_DIMENSIONS")
        caption, caption_entities = "", []
        if params.get("caption") not in (None, ""):
            caption, caption_entities = self._format_text(
                params.get("caption"),
                params.get("parse_mode"),
                params.get("caption_entities"),
                "message caption is too long",
                limit=MAX_CAPTION_LENGTH,
            )
        sent_markup, inline_markup = self._validate_reply_markup(params.get("reply_markup"))
        file_id = f"photo-{len(self._photos) + 1}"
        self._photos[file_id] = data
        # Telegram stores thumbnails too; the largest size is the upload (at most 1280 px).
        scale = min(1.0, 1280 / max(width, height))
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self._bot_user),
            "chat": dict(self._chats[chat_id]),
            "date": int(time.time()),
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "width": round(width * scale),
                    "height": round(height * scale),
                    "file_size": len(data),
                }
            ],
        }
        if caption:
            message["caption"] = caption
            if caption_entities:
                message["caption_entities"] = caption_entities
        if inline_markup is not None:
            message["reply_markup"] = inline_markup
        self._store(
            chat_id,
            _StoredMessage(
                message=message,
                from_bot=True,
                raw_text=params.get("caption"),
                parse_mode=params.get("parse_mode") or None,
                reply_markup=copy.deepcopy(sent_markup),
            ),
        )
        self._cond.notify_all()
        return copy.deepcopy(message)

    def _api_get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        """getFile: a File with a file_path to download; over 20 MB Telegram refuses."""
        file_id = params.get("file_id")
        if not file_id:
            raise _bad_request("file_id not specified")
        if file_id not in self._files:
            raise _bad_request("invalid file_id")
        size = self._files[file_id][1]
        if size > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        path = f"documents/file_{len(self._file_paths)}"
        self._file_paths[path] = file_id
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": size,
            "file_path": path,
        }

    def photo_bytes(self, file_id: str) -> bytes:
        """The bytes of a photo the bot uploaded."""
        with self._lock:
            return self._photos[file_id]

    def _api_send_chat_action(self, params: dict[str, Any]) -> bool:
        chat_id = self._resolve_chat(params)
        action = params.get("action")
        if not action:
            raise _bad_request("action is empty")
        if action not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        self._chat_actions.setdefault(chat_id, []).append(action)
        self._cond.notify_all()
        return True

    def _editable_message(self, params: dict[str, Any]) -> tuple[int, _StoredMessage]:
        if params.get("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")  # inline mode is not modelled
        chat_id = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        stored = self._find_message(chat_id, message_id)
        if stored is None:
            raise _bad_request("message to edit not found")
        if not stored.from_bot:
            raise _bad_request("message can't be edited")
        return chat_id, stored

    @staticmethod
    def _not_modified() -> _ApiError:
        return _bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )

    def _apply_edit(self, stored: _StoredMessage, new_message: dict[str, Any]) -> dict[str, Any]:
        stored.history.append(copy.deepcopy(stored.message))
        new_message["edit_date"] = int(time.time())
        stored.message = new_message
        self._cond.notify_all()
        return copy.deepcopy(new_message)

    def _api_edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        _, stored = self._editable_message(params)
        if "text" not in stored.message:
            raise _bad_request("there is no text in the message to edit")
        text, entities = self._format_text(
            params.get("text"),
            params.get("parse_mode"),
            params.get("entities"),
            "MESSAGE_TOO_LONG",
        )
        sent_markup, inline_markup = self._validate_reply_markup(params.get("reply_markup"))
        old = stored.message
        if (
            old.get("text") == text
            and old.get("entities", []) == entities
            and old.get("reply_markup") == inline_markup
        ):
            raise self._not_modified()
        new_message = copy.deepcopy(old)
        new_message["text"] = text
        new_message.pop("entities", None)
        new_message.pop("reply_markup", None)
        if entities:
            new_message["entities"] = entities
        if inline_markup is not None:
            new_message["reply_markup"] = inline_markup
        stored.raw_text = params.get("text")
        stored.parse_mode = params.get("parse_mode") or None
        stored.reply_markup = copy.deepcopy(sent_markup)
        return self._apply_edit(stored, new_message)

    def _api_edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        _, stored = self._editable_message(params)
        sent_markup, inline_markup = self._validate_reply_markup(params.get("reply_markup"))
        if sent_markup is not None and inline_markup is None:
            raise _bad_request("inline keyboard expected")
        if stored.message.get("reply_markup") == inline_markup:
            raise self._not_modified()
        new_message = copy.deepcopy(stored.message)
        new_message.pop("reply_markup", None)
        if inline_markup is not None:
            new_message["reply_markup"] = inline_markup
        stored.reply_markup = copy.deepcopy(sent_markup)
        return self._apply_edit(stored, new_message)

    def _api_delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        if message_id is None:
            raise _bad_request("message identifier is not specified")
        stored = self._find_message(chat_id, message_id)
        if stored is None:
            raise _bad_request("message to delete not found")
        if not stored.from_bot and self._chats[chat_id]["type"] != "private":
            raise _bad_request("message can't be deleted")
        stored.deleted = True
        self._cond.notify_all()
        return True

    def _api_answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = params.get("callback_query_id")
        if not query_id:
            raise _bad_request("query_id is empty")
        query_id = str(query_id)
        if query_id not in self._callback_queries or query_id in self._answered_queries:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._answered_queries.add(query_id)
        self._callback_answers.append(
            {
                "callback_query_id": query_id,
                "data": self._callback_queries[query_id].get("data"),
                "text": text,
                "show_alert": _as_bool(params.get("show_alert", False)),
                "url": params.get("url"),
                "cache_time": params.get("cache_time"),
            }
        )
        self._cond.notify_all()
        return True

    def _scope_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope")
        if scope in (None, ""):
            scope = {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise _bad_request(_JSON_FIELDS["scope"])
        kind = scope["type"]
        key = kind
        if kind in ("chat", "chat_administrators", "chat_member"):
            key = f"{kind}:{self._resolve_chat(scope)}"
            if kind == "chat_member":
                user_id = _as_int(scope.get("user_id"), "user_id")
                if user_id is None:
                    raise _bad_request("user not found")
                key += f":{user_id}"
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad_request("invalid language code specified")
        return key, language

    def _api_set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if commands is None or commands == "":
            raise _bad_request('parameter "commands" is required')
        if not isinstance(commands, list):
            raise _bad_request(_JSON_FIELDS["commands"])
        if len(commands) > 100:
            raise _bad_request("too many commands specified")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request(_JSON_FIELDS["commands"])
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._scope_key(params)
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        self._cond.notify_all()
        return True

    def _api_get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get(self._scope_key(params), []))

    def _api_delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._scope_key(params), None)
        self._cond.notify_all()
        return True

    def _api_set_webhook(self, params: dict[str, Any]) -> tuple[bool, str]:
        url = params.get("url") or ""
        if not url:
            return self._api_delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not _is_loopback_host(parts.hostname):
            raise _bad_request(
                "bad webhook: fake_telegram only delivers webhooks to loopback addresses"
            )
        secret = params.get("secret_token")
        if secret not in (None, "") and not _SECRET_TOKEN_RE.fullmatch(str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        max_connections = _as_int(params.get("max_connections"), "max_connections", default=40)
        if not 1 <= (max_connections or 0) <= 100:
            raise _bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if allowed not in (None, "") and (
            not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)
        ):
            raise _bad_request(_JSON_FIELDS["allowed_updates"])
        already = self._webhook.get("url") == url
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        self._webhook = {
            "url": url,
            "secret_token": secret or None,
            "max_connections": max_connections,
            "ip_address": params.get("ip_address"),
            "allowed_updates": allowed or None,
            "allowed_updates_set": (
                frozenset(a for a in allowed if a in _UPDATE_TYPES) if allowed else None
            ),
            "has_custom_certificate": bool(params.get("certificate")),
        }
        self._webhook_error = None
        self._poll_generation += 1
        self._cond.notify_all()
        loop = self._loop
        assert loop is not None
        loop.call_soon(self._ensure_webhook_task)
        self._wake_pollers()
        return True, "Webhook is already set" if already else "Webhook was set"

    def _api_delete_webhook(self, params: dict[str, Any]) -> tuple[bool, str]:
        had = bool(self._webhook.get("url"))
        self._webhook = {}
        self._webhook_error = None
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        self._cond.notify_all()
        self._wake_pollers()
        return True, "Webhook was deleted" if had else "Webhook is already deleted"

    def _api_get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": self._webhook.get("has_custom_certificate", False),
            "pending_update_count": len(self._updates),
        }
        if self._webhook.get("url"):
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook.get("ip_address"):
                info["ip_address"] = self._webhook["ip_address"]
            if self._webhook.get("allowed_updates"):
                info["allowed_updates"] = list(self._webhook["allowed_updates"])
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _api_close(self, params: dict[str, Any]) -> bool:
        self._close_calls += 1
        if self._close_calls > 1:
            raise _ApiError(429, "Too Many Requests: retry after 600", {"retry_after": 600})
        return True

    def _setting_setter(self, key: str, param: str) -> Callable[[dict[str, Any]], bool]:
        def setter(params: dict[str, Any]) -> bool:
            language = params.get("language_code") or ""
            self._settings[(key, language)] = params.get(param) or ""
            return True

        return setter

    def _setting_getter(self, key: str, param: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def getter(params: dict[str, Any]) -> dict[str, Any]:
            language = params.get("language_code") or ""
            return {param: self._settings.get((key, language), "")}

        return getter

    def _api_set_chat_menu_button(self, params: dict[str, Any]) -> bool:
        key = self._resolve_chat(params) if params.get("chat_id") not in (None, "") else None
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise _bad_request(_JSON_FIELDS["menu_button"])
        self._settings[("menu_button", key)] = button
        return True

    def _api_get_chat_menu_button(self, params: dict[str, Any]) -> dict[str, Any]:
        key = self._resolve_chat(params) if params.get("chat_id") not in (None, "") else None
        return copy.deepcopy(
            self._settings.get(("menu_button", key))
            or self._settings.get(("menu_button", None))
            or {"type": "commands"}
        )

    # -- webhook delivery ----------------------------------------------------------------------

    def _ensure_webhook_task(self) -> None:
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_sender())

    async def _webhook_sender(self) -> None:
        while not self._closing:
            with self._lock:
                url = self._webhook.get("url")
                secret = self._webhook.get("secret_token")
                update = copy.deepcopy(self._updates[0]) if self._updates else None
            if not url:
                return
            if update is None:
                event = self._updates_event
                assert event is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), 0.5)
                continue
            if self._client is None:
                self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            headers = {"Content-Type": "application/json"}
            if secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = secret
            error: str | None = None
            status: int | None = None
            try:
                async with self._client.post(
                    url, data=json.dumps(update, ensure_ascii=False), headers=headers, ssl=False
                ) as response:
                    status = response.status
                    await response.read()
                    if not 200 <= status < 300:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused, timeouts...
                error = f"Connection failed: {exc.__class__.__name__}: {exc}"
            with self._lock:
                self._webhook_deliveries.append(
                    {"update_id": update["update_id"], "url": url, "status": status, "error": error}
                )
                if error is None:
                    self._updates = [
                        u for u in self._updates if u["update_id"] != update["update_id"]
                    ]
                else:
                    self._webhook_error = (int(time.time()), error)
                self._cond.notify_all()
            if error is not None:
                await asyncio.sleep(self.webhook_retry_delay)

    @property
    def webhook_info(self) -> dict[str, Any]:
        """What ``getWebhookInfo`` would return right now."""
        with self._lock:
            return self._api_get_webhook_info({})

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every webhook POST attempt: update_id, url, HTTP status, error."""
        with self._lock:
            return copy.deepcopy(self._webhook_deliveries)

    # -- user side ----------------------------------------------------------------------------

    def _register_user(
        self,
        user_id: int,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        language_code: str | None,
    ) -> dict[str, Any]:
        user = self._users.get(user_id, {"id": user_id, "is_bot": False})
        user["first_name"] = first_name or user.get("first_name") or f"User{user_id}"
        for key, value in (
            ("last_name", last_name),
            ("username", username),
            ("language_code", language_code),
        ):
            if value is not None:
                user[key] = value
        self._users[user_id] = user
        return dict(user)

    def _register_chat(
        self, chat_id: int, chat_type: str, user: dict[str, Any], title: str | None
    ) -> dict[str, Any]:
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            existing = self._chats.get(chat_id, {})
            chat = {"id": chat_id, "type": chat_type, "title": title or existing.get("title")}
            if not chat["title"]:
                chat["title"] = "Test group"
        self._chats[chat_id] = chat
        return dict(chat)

    def send_message(
        self,
        text: str,
        chat_id: int | None = None,
        *,
        user_id: int = 1001,
        chat_type: str = "private",
        username: str | None = "testuser",
        first_name: str | None = "Test",
        last_name: str | None = None,
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
        language_code: str | None = "da",
    ) -> dict[str, Any]:
        """Let a user send ``text``; queues a ``message`` Update and returns the Message.

        For private chats ``chat_id`` defaults to (and must equal) ``user_id``; for
        ``group``/``supergroup`` it defaults to ``-100123`` / ``-1001234567890``.
        ``bot_command`` and ``mention`` (and other) entities are detected like on Telegram.
        """
        if chat_type not in ("private", "group", "supergroup"):
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        if chat_id is None:
            chat_id = {"private": user_id, "group": -100123, "supergroup": -1001234567890}[
                chat_type
            ]
        if chat_type == "private" and chat_id != user_id:
            raise ValueError("in a private chat, chat_id must equal user_id")
        if chat_type != "private" and chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if not text or not text.strip():
            raise ValueError("Telegram clients cannot send empty messages")
        if utf16_len(text) > MAX_MESSAGE_LENGTH:
            raise ValueError("Telegram clients split messages longer than 4096 characters")
        with self._lock:
            existing = self._chats.get(chat_id)
            if existing is not None and existing["type"] != chat_type:
                raise ValueError(f"chat {chat_id} is a {existing['type']} chat")
            user = self._register_user(user_id, username, first_name, last_name, language_code)
            chat = self._register_chat(chat_id, chat_type, user, chat_title)
            self._last_user_in_chat[chat_id] = user_id
            message: dict[str, Any] = {
                "message_id": self._new_message_id(chat_id),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            entities = _find_entities(text)
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None:
                replied = self._find_message(chat_id, reply_to_message_id)
                if replied is None:
                    raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
                message["reply_to_message"] = self._reply_copy(replied.message)
            self._store(chat_id, _StoredMessage(message=message, from_bot=False, raw_text=text))
            self.enqueue_update({"message": message})
            return copy.deepcopy(message)

    def send_document(
        self,
        data: bytes,
        file_name: str,
        *,
        user_id: int = 1001,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        declared_size: int | None = None,
        language_code: str | None = "da",
        chat_id: int | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        """Let a user send a file as a document (in a private chat unless chat_id is given).

        ``declared_size`` stands in for a file too large to hold in a test: the message and
        getFile report that size (getFile then refuses above 20 MB, as Telegram does).
        """
        size = len(data) if declared_size is None else declared_size
        if size > MAX_UPLOAD_BYTES:
            raise ValueError("Telegram clients cannot send files over 2 GB")
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            user = self._register_user(user_id, "testuser", "Test", None, language_code)
            chat = self._register_chat(chat_id, chat_type, user, None)
            self._last_user_in_chat[chat_id] = user_id
            file_id = f"doc-{len(self._files) + 1}"
            self._files[file_id] = (data, size)
            message: dict[str, Any] = {
                "message_id": self._new_message_id(chat_id),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "document": {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_name": file_name,
                    "mime_type": mime_type,
                    "file_size": size,
                },
            }
            if caption:
                message["caption"] = caption
            self._store(chat_id, _StoredMessage(message=message, from_bot=False))
            self.enqueue_update({"message": message})
            return copy.deepcopy(message)

    def press_button(
        self,
        message: BotMessage | dict[str, Any],
        callback_data: str | None = None,
        *,
        button_text: str | None = None,
        user_id: int | None = None,
        username: str | None = None,
        first_name: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """Press an inline button of a bot message; queues a ``callback_query`` Update.

        ``message`` is a ``BotMessage`` or a Message dict; the button is chosen by
        ``callback_data`` or ``button_text`` and must exist on the message's *current*
        keyboard (otherwise ``AssertionError``).  ``user_id`` defaults to the private
        chat's user or the last user who wrote in the group.  Returns the CallbackQuery.
        """
        if (callback_data is None) == (button_text is None):
            raise ValueError("give exactly one of callback_data or button_text")
        if isinstance(message, BotMessage):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = message["chat"]["id"], message["message_id"]
        with self._lock:
            stored = self._find_message(chat_id, message_id)
            if stored is None or not stored.from_bot:
                raise AssertionError(f"no bot message {message_id} in chat {chat_id}")
            buttons = [
                b
                for row in (stored.message.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            ]
            if callback_data is not None:
                chosen = next((b for b in buttons if b.get("callback_data") == callback_data), None)
            else:
                chosen = next((b for b in buttons if b.get("text") == button_text), None)
            if chosen is None or "callback_data" not in chosen:
                raise AssertionError(
                    f"message {message_id} in chat {chat_id} has no callback button "
                    f"{callback_data or button_text!r}; buttons: {buttons}"
                )
            if user_id is None:
                user_id = chat_id if chat_id > 0 else self._last_user_in_chat.get(chat_id, 1001)
            user = self._register_user(user_id, username, first_name, None, language_code or "da")
            query = {
                "id": str(next(self._callback_ids)),
                "from": user,
                "message": copy.deepcopy(stored.message),
                "chat_instance": str(-abs(chat_id) * 7919 - 17),
                "data": chosen["callback_data"],
            }
            self._callback_queries[query["id"]] = copy.deepcopy(query)
            self.enqueue_update({"callback_query": query})
            return copy.deepcopy(query)

    async def send_message_async(
        self, text: str, chat_id: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Async alias of ``send_message`` (which never blocks for long)."""
        return self.send_message(text, chat_id, **kwargs)

    async def press_button_async(
        self, message: BotMessage | dict[str, Any], callback_data: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Async alias of ``press_button``."""
        return self.press_button(message, callback_data, **kwargs)

    def block_bot(self, chat_id: int, blocked: bool = True) -> None:
        """Make sends to ``chat_id`` fail with 403 (user blocked the bot)."""
        with self._lock:
            if blocked:
                self._blocked.add(chat_id)
            else:
                self._blocked.discard(chat_id)

    # -- inspection -----------------------------------------------------------------------------

    def _snapshot(self, chat_id: int, stored: _StoredMessage) -> BotMessage:
        message = copy.deepcopy(stored.message)
        return BotMessage(
            chat_id=chat_id,
            message_id=message["message_id"],
            text=message.get("text"),
            entities=message.get("entities", []),
            parse_mode=stored.parse_mode,
            raw_text=stored.raw_text,
            reply_markup=copy.deepcopy(stored.reply_markup),
            message=message,
            history=copy.deepcopy(stored.history),
            deleted=stored.deleted,
        )

    def bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """Messages the bot sent to ``chat_id``, oldest first, in their current state."""
        with self._lock:
            return [
                self._snapshot(chat_id, stored)
                for _, stored in sorted(self._messages.get(chat_id, {}).items())
                if stored.from_bot and (include_deleted or not stored.deleted)
            ]

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """All (non-deleted) messages of the chat, user's and bot's, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(stored.message)
                for _, stored in sorted(self._messages.get(chat_id, {}).items())
                if not stored.deleted
            ]

    def chat_actions(self, chat_id: int) -> list[str]:
        """Chat actions (``typing``...) the bot sent to ``chat_id``, in order."""
        with self._lock:
            return list(self._chat_actions.get(chat_id, []))

    @property
    def callback_answers(self) -> list[dict[str, Any]]:
        """answerCallbackQuery calls: callback_query_id, data, text, show_alert, url..."""
        with self._lock:
            return copy.deepcopy(self._callback_answers)

    @property
    def commands(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """setMyCommands state keyed by (scope, language_code).

        scope is ``"default"``, ``"all_private_chats"``, ``"all_group_chats"``,
        ``"all_chat_administrators"``, ``"chat:<id>"``, ``"chat_administrators:<id>"`` or
        ``"chat_member:<chat_id>:<user_id>"``; language_code is ``""`` for all languages.
        """
        with self._lock:
            return copy.deepcopy(self._commands)

    def get_commands(self, scope: str = "default", language_code: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._commands.get((scope, language_code), []))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received, in arrival order (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def requests_for(self, method: str) -> list[RecordedRequest]:
        """Requests of one method (case-insensitive)."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    @property
    def errors(self) -> list[RecordedRequest]:
        """Requests that the fake answered with an error (that reached the client)."""
        return [r for r in self.requests if r.status not in (None, 200) and not r.client_gone]

    def fail_next(
        self,
        method: str,
        error_code: int = 500,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        parameters: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (or ``"*"``) fail.

        ``fail_next("sendMessage", 429, retry_after=1)`` answers
        ``{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1}}`` (PTB raises ``RetryAfter``).
        """
        params = dict(parameters or {})
        if retry_after is not None:
            params["retry_after"] = retry_after
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {params.get('retry_after', 1)}"
                params.setdefault("retry_after", 1)
            else:
                description = _DEFAULT_ERROR_DESCRIPTIONS.get(error_code, "Unknown error")
        with self._lock:
            self._injected.append(
                _Injected(method.lower(), times, error_code, description, params or None)
            )

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Delay the answer to the next ``times`` calls of ``method`` by ``seconds``."""
        with self._lock:
            self._injected.append(_Injected(method.lower(), times, delay=seconds))

    # -- waiting ---------------------------------------------------------------------------------

    def _diagnostics(self) -> str:
        with self._lock:
            errors = [
                f"{r.method} -> {r.status} {(r.response or {}).get('description')}"
                for r in self._requests
                if r.status not in (None, 200) and not r.client_gone
            ]
            undelivered = [f"{u['update_id']}: {reason}" for u, reason in self._undelivered]
            pending = [u["update_id"] for u in self._updates]
        lines = []
        if errors:
            lines.append("error answers sent to the bot: " + "; ".join(errors[-10:]))
        if undelivered:
            lines.append("updates Telegram would not deliver: " + "; ".join(undelivered[-10:]))
        if pending:
            lines.append(f"updates still pending (bot did not fetch/confirm them): {pending}")
        return ("\n" + "\n".join(lines)) if lines else ""

    @staticmethod
    def _ensure_not_in_event_loop(name: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise RuntimeError(
            f"FakeTelegram.{name}() blocks; inside a running event loop use "
            f"'await FakeTelegram.{name}_async(...)' so the bot can keep running"
        )

    def _bot_messages_failure(self, chat_id: int, count: int, timeout: float) -> AssertionError:
        received = [m.text for m in self.bot_messages(chat_id)]
        return AssertionError(
            f"expected at least {count} bot message(s) in chat {chat_id} within {timeout}s, "
            f"got {len(received)}: {received!r}{self._diagnostics()}"
        )

    def wait_for_bot_messages(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[BotMessage]:
        """Block until the bot has sent ``count`` messages to ``chat_id``; return them all."""
        self._ensure_not_in_event_loop("wait_for_bot_messages")
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len(self.bot_messages(chat_id)) >= count, timeout=timeout
            )
        if not ok:
            raise self._bot_messages_failure(chat_id, count, timeout)
        return self.bot_messages(chat_id)

    async def wait_for_bot_messages_async(
        self, chat_id: int, count: int = 1, timeout: float = 5.0
    ) -> list[BotMessage]:
        """Async version of ``wait_for_bot_messages`` (lets the bot's event loop run)."""
        deadline = time.monotonic() + timeout
        while len(self.bot_messages(chat_id)) < count:
            if time.monotonic() >= deadline:
                raise self._bot_messages_failure(chat_id, count, timeout)
            await asyncio.sleep(0.01)
        return self.bot_messages(chat_id)

    def wait_until(
        self,
        predicate: Callable[[FakeTelegram], Any],
        timeout: float = 5.0,
        message: str = "condition not met",
    ) -> Any:
        """Block until ``predicate(self)`` is truthy; return its value or AssertionError."""
        self._ensure_not_in_event_loop("wait_until")
        result: list[Any] = []

        def check() -> bool:
            value = predicate(self)
            if value:
                result.append(value)
            return bool(value)

        with self._cond:
            ok = self._cond.wait_for(check, timeout=timeout)
        if not ok:
            raise AssertionError(f"{message} within {timeout}s{self._diagnostics()}")
        return result[-1]

    async def wait_until_async(
        self,
        predicate: Callable[[FakeTelegram], Any],
        timeout: float = 5.0,
        message: str = "condition not met",
    ) -> Any:
        """Async version of ``wait_until``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{message} within {timeout}s{self._diagnostics()}")
            await asyncio.sleep(0.01)

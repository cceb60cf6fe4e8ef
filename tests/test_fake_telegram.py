"""Self-tests for ``tests/fake_telegram.py``.

The fake is driven by a real python-telegram-bot ``Application`` (polling against the
fake's HTTP server) and, where PTB would hide details, by raw Bot API calls through
PTB's ``Bot``/``do_api_request`` or httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import (
    EntityParseError,
    FakeTelegram,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)

TOKEN = "123456:TEST-token"
USER = 4242


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN, bot_username="raadet_bot") as fake:
        yield fake


def build_app(tg: FakeTelegram, token: str = TOKEN) -> Application:
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .build()
    )


@contextlib.asynccontextmanager
async def running(app: Application) -> AsyncIterator[Application]:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    text = html.escape(update.message.text)
    await update.message.reply_text(f"<b>Echo:</b> {text}", parse_mode="HTML")


async def echo_without_escaping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(f"<b>Echo:</b> {update.message.text}", parse_mode="HTML")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_chat is not None
    await context.bot.send_chat_action(update.effective_chat.id, "typing")
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Ja", callback_data="yes"),
                InlineKeyboardButton("Nej", callback_data="no"),
            ]
        ]
    )
    await context.bot.send_message(
        update.effective_chat.id, "Vil du fortsætte?", reply_markup=keyboard
    )


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"Valgt: {query.data}")
    await query.edit_message_text(f"Du valgte <i>{query.data}</i>", parse_mode=ParseMode.HTML)


def add_handlers(app: Application) -> None:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))


# --- end to end with a polling Application -------------------------------------------------


@pytest.mark.asyncio
async def test_message_round_trip(tg: FakeTelegram) -> None:
    app = build_app(tg)
    add_handlers(app)
    async with running(app):
        sent = tg.send_message("Hvad er reglerne for <tilskud> & støtte?", user_id=USER)
        [reply] = await tg.wait_for_bot_messages_async(USER, count=1, timeout=5)

    assert sent["chat"] == {
        "id": USER,
        "type": "private",
        "first_name": "Test",
        "username": "testuser",
    }
    assert reply.text == "Echo: Hvad er reglerne for <tilskud> & støtte?"
    assert reply.entities == [{"type": "bold", "offset": 0, "length": 5}]
    assert reply.parse_mode == "HTML"
    assert reply.message["from"]["is_bot"] is True
    assert isinstance(reply.message["date"], int)
    assert reply.message["date"] <= time.time() + 1
    assert reply.message["message_id"] > sent["message_id"]
    methods = [r.method for r in tg.requests]
    assert methods[0] == "getMe"
    assert "deleteWebhook" in methods and "getUpdates" in methods
    # PTB confirmed the update, so nothing is left pending after shutdown.
    assert tg.pending_updates == []
    assert tg.errors == []


@pytest.mark.asyncio
async def test_unescaped_user_text_in_html_is_rejected(tg: FakeTelegram) -> None:
    """A handler that interpolates user text into HTML without escaping must fail."""
    app = build_app(tg)
    errors: list[BaseException] = []

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_handler(MessageHandler(filters.TEXT, echo_without_escaping))
    app.add_error_handler(on_error)
    async with running(app):
        tg.send_message("is 3 < 4?", user_id=USER)
        await tg.wait_until_async(lambda t: errors, timeout=5, message="no error raised")
    assert isinstance(errors[0], BadRequest)
    # PTB strips "Bad Request: " and str.capitalize()s the rest of the description.
    assert 'unsupported start tag "" at byte offset 18' in str(errors[0])
    assert tg.bot_messages(USER) == []
    [failed] = [r for r in tg.errors if r.method == "sendMessage"]
    assert failed.status == 400
    assert failed.response is not None
    assert failed.response["description"].startswith("Bad Request: can't parse entities: ")


@pytest.mark.asyncio
async def test_command_keyboard_callback_and_edit(tg: FakeTelegram) -> None:
    app = build_app(tg)
    add_handlers(app)
    async with running(app):
        tg.send_message("/start", user_id=USER)
        [question] = await tg.wait_for_bot_messages_async(USER, count=1)
        assert question.callback_data == ["yes", "no"]
        assert tg.chat_actions(USER) == ["typing"]

        query = tg.press_button(question, "yes")
        await tg.wait_until_async(lambda t: t.bot_messages(USER)[0].edited, timeout=5)

    [edited] = tg.bot_messages(USER)
    assert edited.text == "Du valgte yes"
    assert edited.entities == [{"type": "italic", "offset": 10, "length": 3}]
    assert edited.buttons == []  # editMessageText without reply_markup drops the keyboard
    assert edited.history[0]["text"] == "Vil du fortsætte?"
    assert "edit_date" in edited.message
    assert tg.callback_answers[0]["callback_query_id"] == query["id"]
    assert tg.callback_answers[0]["text"] == "Valgt: yes"
    start_update = tg.requests_for("getUpdates")
    assert any(r.response and r.response["result"] for r in start_update)

    with pytest.raises(AssertionError, match="no callback button"):
        tg.press_button(edited, "yes")


@pytest.mark.asyncio
async def test_html_bad_tag_rejected(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    app = build_app(tg)
    async with app:
        with pytest.raises(BadRequest, match=r'(?i)Unsupported start tag "foo" at byte offset 4'):
            await app.bot.send_message(USER, "Hej <foo>x</foo>", parse_mode=ParseMode.HTML)
        with pytest.raises(
            BadRequest,
            match=r'(?i)Unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
        ):
            await app.bot.send_message(USER, "<b><i>x</b></i>", parse_mode=ParseMode.HTML)
        with pytest.raises(
            BadRequest, match=r"(?i)Can't find end tag corresponding to start tag b"
        ):
            await app.bot.send_message(USER, "<b>x", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)must be escaped"):
            await app.bot.send_message(USER, "Tom & Jerry", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await app.bot.send_message(USER, "<b> </b>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)reserved and must be escaped"):
            await app.bot.send_message(USER, "Slut.", parse_mode=ParseMode.MARKDOWN_V2)
        ok = await app.bot.send_message(
            USER,
            '<b>fed</b> &amp; <a href="https://example.dk/?a=1&amp;b=2">link</a> '
            '<pre><code class="language-python">x = 1</code></pre> '
            '<span class="tg-spoiler">s</span> <blockquote expandable>citat</blockquote>',
            parse_mode=ParseMode.HTML,
        )
    assert ok.text == "fed & link x = 1 s citat"
    kinds = [(e.type, e.offset, e.length) for e in ok.entities]
    assert kinds == [
        ("bold", 0, 3),
        ("text_link", 6, 4),
        ("pre", 11, 5),
        ("spoiler", 17, 1),
        ("expandable_blockquote", 19, 5),
    ]
    assert ok.entities[1].url == "https://example.dk/?a=1&b=2"
    assert ok.entities[2].language == "python"


@pytest.mark.asyncio
async def test_too_long_text_rejected(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    app = build_app(tg)
    async with app:
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await app.bot.send_message(USER, "x" * 4097)
        await app.bot.send_message(USER, "x" * 4096)
        # Telegram counts UTF-16 code units: an emoji is two of them.
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await app.bot.send_message(USER, "😀" * 2049)
        await app.bot.send_message(USER, "😀" * 2048)
        # ... and counts after entity parsing: markup does not count.
        await app.bot.send_message(USER, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await app.bot.send_message(USER, "<b>" + "y" * 4097 + "</b>", parse_mode="HTML")
        first = (await app.bot.send_message(USER, "kort")).message_id
        with pytest.raises(BadRequest, match=r"(?i)MESSAGE_TOO_LONG"):
            await app.bot.edit_message_text("z" * 4097, chat_id=USER, message_id=first)
    assert [utf16_len(m.text or "") for m in tg.bot_messages(USER)] == [4096, 4096, 4096, 4]


@pytest.mark.asyncio
async def test_callback_data_over_64_bytes_rejected(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    app = build_app(tg)

    def keyboard(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("knap", callback_data=data)]])

    async with app:
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await app.bot.send_message(USER, "a", reply_markup=keyboard("a" * 65))
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
            await app.bot.send_message(USER, "a", reply_markup=keyboard("æ" * 33))  # 66 bytes
        await app.bot.send_message(USER, "a", reply_markup=keyboard("a" * 64))
        await app.bot.send_message(USER, "b", reply_markup=keyboard("æ" * 32))
        with pytest.raises(BadRequest, match=r"(?i)Text buttons are unallowed"):
            await app.bot.send_message(
                USER, "c", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x")]])
            )
    assert [m.callback_data for m in tg.bot_messages(USER)] == [["a" * 64], ["æ" * 32]]


@pytest.mark.asyncio
async def test_long_polling_waits_and_returns_early(tg: FakeTelegram) -> None:
    app = build_app(tg)
    async with app:
        began = time.monotonic()
        assert await app.bot.get_updates(timeout=1) == ()
        assert time.monotonic() - began >= 0.9

        async def user_writes_later() -> None:
            await asyncio.sleep(0.3)
            tg.send_message("hej", user_id=USER)

        writer = asyncio.create_task(user_writes_later())
        began = time.monotonic()
        updates = await app.bot.get_updates(timeout=10)
        elapsed = time.monotonic() - began
        await writer
    assert 0.25 <= elapsed < 2
    assert [u.message.text for u in updates if u.message] == ["hej"]


@pytest.mark.asyncio
async def test_offsets_confirm_updates(tg: FakeTelegram) -> None:
    for text in ("en", "to", "tre"):
        tg.send_message(text, user_id=USER)
    app = build_app(tg)
    async with app:
        first = await app.bot.get_updates()
        assert [u.message.text for u in first if u.message] == ["en", "to", "tre"]
        assert [u.update_id for u in await app.bot.get_updates()] == [u.update_id for u in first]
        limited = await app.bot.get_updates(offset=first[0].update_id + 1, limit=1)
        assert [u.message.text for u in limited if u.message] == ["to"]
        assert len(tg.pending_updates) == 2  # "en" is confirmed and gone
        last = await app.bot.get_updates(offset=-1)
        assert [u.message.text for u in last if u.message] == ["tre"]
        assert await app.bot.get_updates(offset=first[-1].update_id + 1) == ()
    assert tg.pending_updates == []
    assert tg.webhook_info["pending_update_count"] == 0


@pytest.mark.asyncio
async def test_allowed_updates_filter_new_updates(tg: FakeTelegram) -> None:
    app = build_app(tg)
    async with app:
        await app.bot.get_updates(allowed_updates=["callback_query"])
        tg.send_message("hej", user_id=USER)
        assert await app.bot.get_updates() == ()
    [(update, reason)] = tg.undelivered
    assert update["message"]["text"] == "hej"
    assert "allowed_updates" in reason


@pytest.mark.asyncio
async def test_wrong_token_raises_invalid_token(tg: FakeTelegram) -> None:
    app = build_app(tg, token="123456:WRONG-token")
    with pytest.raises(InvalidToken):
        await app.initialize()
    assert tg.requests == []  # rejected before reaching the API layer


@pytest.mark.asyncio
async def test_flood_wait_injection_and_forbidden(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    app = build_app(tg)
    async with app:
        tg.fail_next("sendMessage", 429, retry_after=1)
        with pytest.raises(RetryAfter) as excinfo:
            await app.bot.send_message(USER, "x")
        assert excinfo.value.retry_after in (1, dt.timedelta(seconds=1))
        await app.bot.send_message(USER, "efter pausen")
        tg.block_bot(USER)
        with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
            await app.bot.send_message(USER, "x")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await app.bot.send_message(999, "x")
    assert [m.text for m in tg.bot_messages(USER)] == ["efter pausen"]


@pytest.mark.asyncio
async def test_commands_per_scope_and_language(tg: FakeTelegram) -> None:
    app = build_app(tg)
    async with app:
        await app.bot.set_my_commands([BotCommand("start", "Start"), BotCommand("hjaelp", "Hjælp")])
        await app.bot.set_my_commands(
            [BotCommand("help", "Help")], scope=BotCommandScopeAllPrivateChats(), language_code="en"
        )
        assert [c.command for c in await app.bot.get_my_commands()] == ["start", "hjaelp"]
        with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
            await app.bot.set_my_commands([BotCommand("Start", "x")])
        await app.bot.delete_my_commands()
        assert await app.bot.get_my_commands() == ()
    assert tg.commands == {
        ("all_private_chats", "en"): [{"command": "help", "description": "Help"}]
    }
    assert tg.get_commands("all_private_chats", "en")[0]["command"] == "help"


@pytest.mark.asyncio
async def test_webhook_delivery_and_get_updates_conflict(tg: FakeTelegram) -> None:
    received: list[tuple[dict, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_post("/hook", hook)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    app = build_app(tg)
    try:
        async with app:
            url = f"http://127.0.0.1:{port}/hook"
            assert await app.bot.set_webhook(url, secret_token="s3cret_-")
            info = await app.bot.get_webhook_info()
            assert info.url == url
            with pytest.raises(Conflict, match=r"(?i)webhook is active"):
                await app.bot.get_updates()
            tg.send_message("via webhook", user_id=USER)
            await tg.wait_until_async(lambda t: received, timeout=5)
            with pytest.raises(BadRequest, match=r"(?i)loopback"):
                await app.bot.set_webhook("https://example.com/hook")
            assert await app.bot.delete_webhook()
            assert await app.bot.get_updates() == ()
    finally:
        await runner.cleanup()
    [(update, secret)] = received
    assert secret == "s3cret_-"
    assert update["message"]["text"] == "via webhook"
    assert tg.webhook_deliveries[0]["status"] == 200
    assert tg.pending_updates == []


@pytest.mark.asyncio
async def test_concurrent_get_updates_terminates_older(tg: FakeTelegram) -> None:
    async with httpx.AsyncClient() as client:
        older = asyncio.create_task(client.post(tg.api_url + "getUpdates", data={"timeout": "5"}))
        await asyncio.sleep(0.2)
        newer = await client.post(tg.api_url + "getUpdates", data={"timeout": "0"})
        old_response = await older
    assert newer.json() == {"ok": True, "result": []}
    assert old_response.status_code == 409
    assert "terminated by other getUpdates request" in old_response.json()["description"]


@pytest.mark.asyncio
async def test_group_privacy_mode_and_mentions(tg: FakeTelegram) -> None:
    app = build_app(tg)
    async with app:
        command = tg.send_message("/help@raadet_bot hjælp", chat_type="supergroup", user_id=7)
        tg.send_message("hej @raadet_bot, hvad er fristen?", chat_type="supergroup", user_id=7)
        tg.send_message("/help@other_bot", chat_type="supergroup", user_id=7)
        updates = await app.bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["/help@raadet_bot hjælp"]
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 16}]
    assert [reason.split(":")[0] for _, reason in tg.undelivered] == ["privacy mode"] * 2

    with FakeTelegram(token=TOKEN, bot_username="raadet_bot", privacy_mode=False) as admin:
        mention = admin.send_message("hej @raadet_bot", chat_type="group", user_id=7)
        assert mention["entities"] == [{"type": "mention", "offset": 4, "length": 11}]
        assert mention["chat"]["type"] == "group"
        assert len(admin.pending_updates) == 1


def test_form_and_json_bodies_and_request_log(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    with httpx.Client() as client:
        form = client.post(
            tg.api_url + "sendMessage",
            data={"chat_id": str(USER), "text": "form", "reply_markup": json.dumps(markup)},
        ).json()
        as_json = client.post(
            tg.api_url + "sendmessage",
            json={"chat_id": USER, "text": "json", "reply_markup": markup},
        ).json()
        multipart = client.post(
            tg.api_url + "sendMessage",
            data={"chat_id": str(USER), "text": "multipart"},
            files={"dummy": ("a.txt", b"x")},
        ).json()
        unknown = client.post(tg.api_url + "sendSticker", data={"chat_id": str(USER)})
        wrong = client.post(f"{tg.base_url}123456:nope/getMe")
    assert form["result"]["reply_markup"] == markup
    assert as_json["result"]["reply_markup"] == markup
    assert multipart["result"]["text"] == "multipart"
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    sends = tg.requests_for("sendMessage")
    assert [r.params["chat_id"] for r in sends] == [USER, USER, USER]
    assert sends[0].params["reply_markup"] == markup  # JSON fields are decoded in the log
    ids = [m.message_id for m in tg.bot_messages(USER)]
    assert ids == sorted(ids) and len(set(ids)) == 3


@pytest.mark.asyncio
async def test_sync_wait_refuses_event_loop_and_reports_diagnostics(tg: FakeTelegram) -> None:
    with pytest.raises(RuntimeError, match="wait_for_bot_messages_async"):
        tg.wait_for_bot_messages(USER)
    tg.send_message("hej", user_id=USER)
    with pytest.raises(AssertionError, match="still pending") as excinfo:
        await tg.wait_for_bot_messages_async(USER, count=1, timeout=0.1)
    assert "got 0" in str(excinfo.value)


def test_sync_wait_from_plain_thread(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    with httpx.Client() as client:
        client.post(tg.api_url + "sendMessage", data={"chat_id": USER, "text": "svar"})
    [reply] = tg.wait_for_bot_messages(USER, count=1, timeout=1)
    assert reply.text == "svar"
    with pytest.raises(AssertionError, match=r"got 1: \['svar'\]"):
        tg.wait_for_bot_messages(USER, count=2, timeout=0.1)


# --- parser unit tests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br/>", 'Unsupported start tag "br/" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<i>a</i   ", "Unclosed end tag at byte offset 4"),
        ("<a href=x>y", "Can't find end tag corresponding to start tag a"),
        ("<span>s</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("æ<b", "Unclosed start tag at byte offset 2"),
        ("&foo;", "must be escaped"),
    ],
)
def test_html_parser_errors(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as excinfo:
        parse_html(markup)
    assert error in str(excinfo.value)


def test_html_parser_entities_and_utf16_offsets() -> None:
    text, entities = parse_html("😀 <b>fed <i>kursiv</i></b> &#128512;&lt;&quot;&gt;&amp;<u></u>")
    assert text == '😀 fed kursiv 😀<">&'
    assert utf16_len(text) == len(text) + 2
    assert entities == [
        {"type": "bold", "offset": 3, "length": 10},
        {"type": "italic", "offset": 7, "length": 6},
    ]
    assert parse_html("Tom & Jerry", strict_ampersand=False) == ("Tom & Jerry", [])
    assert parse_html("<code>x</code>")[1] == [{"type": "code", "offset": 0, "length": 1}]


def test_markdown_v2_parser() -> None:
    text, entities = parse_markdown_v2(r"*fed* _kursiv_ __under__ [link](https://a.dk) 1\.")
    assert text == "fed kursiv under link 1."
    assert [e["type"] for e in entities] == ["bold", "italic", "underline", "text_link"]
    with pytest.raises(EntityParseError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown_v2("*fed")


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.asyncio
async def test_send_photo_checks_image_size_and_caption(tg: FakeTelegram) -> None:
    tg.send_message("hej", user_id=USER)
    app = build_app(tg)
    async with app:
        sent = await app.bot.send_photo(
            USER, _png(600, 400), caption="<b>Rapport</b> 2026", parse_mode="HTML"
        )
        assert sent.photo[-1].width == 600 and sent.caption == "Rapport 2026"
        with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
            await app.bot.send_photo(USER, _png(10, 10), caption="x" * 1025)
        with pytest.raises(BadRequest, match=r"(?i)PHOTO_INVALID_DIMENSIONS"):
            await app.bot.send_photo(USER, _png(2100, 100))  # ratio over 20
        with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
            await app.bot.send_photo(USER, b"not an image at all")
    [photo] = [m for m in tg.bot_messages(USER) if "photo" in m.message]
    assert tg.photo_bytes(photo.message["photo"][-1]["file_id"]) == _png(600, 400)

"""Staff keep the knowledge current from Telegram: upload, replace and remove documents.

Real PTB against the fake Bot API (getFile and file downloads), a real Chroma store, the real
loaders and PDFs made by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.answer.core import Answerer
from bot.ingest import pipeline
from tests.conftest import KNOWLEDGE, REPO, make_settings
from tests.fake_telegram import BotMessage, FakeTelegram
from tests.helpers import make_html, make_pdf
from tests.test_fetch import page, site  # noqa: F401
from tests.test_read_only import UNSHARE, _read_only, _unprivileged_works
from tests.test_telegram import ADMIN, TIMEOUT, TOKEN, Bot, StartBot, start_bot  # noqa: F401

SMALL_KB = ("vision.md", "projekt-ungifokus.md", "sources.csv")
FACT = "Projekt Solsikke i Skejby har 77 deltagere og begyndte i marts 2026."
NEW_FACT = "Projekt Solsikke i Skejby har nu 93 deltagere efter udvidelsen i oktober 2026."
QUESTION = "Hvor mange deltagere har Projekt Solsikke i Skejby?"
CITIZEN = 7


@pytest.fixture
async def staff_bot(start_bot: StartBot, tmp_path: Path, embedder) -> Bot:  # noqa: F811
    knowledge = tmp_path / "small-knowledge"
    knowledge.mkdir()
    for name in SMALL_KB:
        shutil.copy(KNOWLEDGE / name, knowledge / name)
    data_dir = tmp_path / "small-data"
    small = make_settings(data_dir, knowledge_dir=knowledge, curated_answers=False)
    assert pipeline.run_ingest(small, embedder=embedder).exit_code == 0
    return await start_bot(
        answerer=Answerer(small, embedder=embedder),
        data_dir=data_dir,
        knowledge_dir=knowledge,
        curated_answers=False,
    )


async def send_file(bot: Bot, data: bytes, name: str, user_id: int = ADMIN, **kwargs) -> BotMessage:
    before = len(bot.tg.bot_messages(user_id))
    bot.tg.send_document(data, name, user_id=user_id, **kwargs)
    [reply] = await bot.replies(user_id, 1, since=before)
    return reply


async def press(bot: Bot, message: BotMessage, data: str, user_id: int = ADMIN) -> BotMessage:
    before = len(bot.tg.bot_messages(user_id))
    bot.tg.press_button(message, data)
    [reply] = await bot.replies(user_id, 1, since=before)
    return reply


def pdf_bytes(tmp_path: Path, text: str, name: str = "solsikke.pdf") -> bytes:
    return make_pdf(tmp_path / name, [text, "Side to: kontakt via Rådets side."]).read_bytes()


def audit_lines(bot: Bot) -> list[dict]:
    path = bot.settings.data_dir / "audit.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_an_uploaded_pdf_is_answered_from_cited_while_others_keep_getting_answers(
    staff_bot: Bot, tmp_path: Path
) -> None:
    bot = staff_bot
    found = await send_file(
        bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", caption="Notat om Projekt Solsikke"
    )
    assert "Notat om Projekt Solsikke" in found.text and "2 s." in found.text
    assert found.button_texts == ["Tilføj", "Annullér"]
    assert all(len(d.encode()) <= 64 for d in found.callback_data)
    # Another chat is answered while the upload waits for confirmation.
    parts = await bot.answer("Hvad er UngiFokus?", user_id=CITIZEN)
    assert parts[-1].callback_data
    done = await press(bot, found, next(d for d in found.callback_data if d.endswith(":y")))
    assert done.text.startswith("solsikke.pdf er tilføjet")
    assert (bot.settings.uploads_path / "solsikke.pdf").exists()
    parts = await bot.answer(QUESTION, user_id=CITIZEN)
    text = "\n".join(p.text for p in parts)
    assert "77 deltagere" in text and "Notat om Projekt Solsikke" in parts[-1].text
    # The upload is listed as such, and a plain ingest (or a restart) keeps it.
    listing = await bot.command("/kilder", user_id=CITIZEN)
    assert "Notat om Projekt Solsikke" in listing.text and "(uploadet)" in listing.text
    again = pipeline.run_ingest(
        bot.settings, store=bot.answerer.store, embedder=bot.answerer.embedder
    )
    assert again.deleted == [] and "upload:solsikke.pdf" in again.unchanged
    [line] = audit_lines(bot)
    assert line["admin"] == ADMIN and line["action"] == "upload"
    assert line["document"] == "solsikke.pdf" and line["result"] == "ok"
    status = await bot.command("/status", user_id=ADMIN)
    assert "upload solsikke.pdf: ok" in status.text
    # Until the next `make train` the upload is named as one the answer model has not seen.
    lines = status.text.splitlines()
    assert lines[lines.index("Nye eller ændrede siden make train") + 1] == "upload:solsikke.pdf"
    # knowledge/ is untouched: uploads live under DATA_DIR.
    assert sorted(p.name for p in bot.settings.knowledge_dir.iterdir()) == sorted(SMALL_KB)
    assert not bot.tg.errors


async def test_uploads_from_others_and_bad_files_are_refused_and_change_nothing(
    staff_bot: Bot, tmp_path: Path
) -> None:
    bot = staff_bot
    refused = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", user_id=CITIZEN)
    assert "kun tilføjes af Rådets medarbejdere" in refused.text
    corrupt = await send_file(bot, b"%PDF-1.4\nnot really a pdf", "rapport.pdf")
    assert "rapport.pdf kan ikke bruges" in corrupt.text and "Intet er ændret" in corrupt.text
    big = await send_file(bot, b"x", "stor.pdf", declared_size=25 * 1024 * 1024)
    assert "over 20 MB" in big.text
    docx = await send_file(bot, b"PK\x03\x04", "notat.docx")
    assert "den filtype kan jeg ikke læse" in docx.text
    empty = await send_file(bot, b"   \n", "tom.txt")
    assert "tom.txt kan ikke bruges" in empty.text
    locked = make_pdf(tmp_path / "laast.pdf", [FACT], password="hemmelig").read_bytes()
    encrypted = await send_file(bot, locked, "laast.pdf")
    assert "laast.pdf kan ikke bruges" in encrypted.text
    replies = [refused, corrupt, big, docx, empty, encrypted]
    assert [c.text for c in replies if c.callback_data] == []
    assert [p.name for p in bot.settings.uploads_path.iterdir() if not p.name.startswith(".")] == []
    assert not any(bot.settings.uploads_path.glob(".staging/*/*"))
    assert [c["document"] for c in audit_lines(bot)] == ["rapport.pdf", "tom.txt", "laast.pdf"]
    assert not bot.tg.errors


async def test_replacing_and_removing_an_upload(staff_bot: Bot, tmp_path: Path) -> None:
    bot = staff_bot
    first = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", caption="Solsikke")
    await press(bot, first, next(d for d in first.callback_data if d.endswith(":y")))
    second = await send_file(
        bot, pdf_bytes(tmp_path, NEW_FACT, "v2.pdf"), "solsikke.pdf", caption="Solsikke"
    )
    assert "bliver erstattet" in second.text
    await press(bot, second, next(d for d in second.callback_data if d.endswith(":y")))
    text = "\n".join(p.text for p in await bot.answer(QUESTION, user_id=CITIZEN))
    assert "93 deltagere" in text and "77 deltagere" not in text

    choose = await bot.command("/fjern", user_id=ADMIN)
    assert choose.button_texts == ["solsikke.pdf"] and "knowledge/" in choose.text
    confirm = await press(bot, choose, choose.callback_data[0])
    assert confirm.text == "Fjern solsikke.pdf fra vidensbasen?"
    kept = await press(bot, confirm, next(d for d in confirm.callback_data if d.startswith("rmn:")))
    assert kept.text == "solsikke.pdf er ikke fjernet."
    confirm = await press(bot, await bot.command("/fjern", user_id=ADMIN), choose.callback_data[0])
    done = await press(bot, confirm, next(d for d in confirm.callback_data if d.startswith("rmy:")))
    assert done.text.startswith("solsikke.pdf er fjernet")
    answer = await bot.answer(QUESTION, user_id=CITIZEN)
    assert "93 deltagere" not in "\n".join(p.text for p in answer)
    assert not (bot.settings.uploads_path / "solsikke.pdf").exists()
    assert [(c["action"], c["result"]) for c in audit_lines(bot)] == [
        ("upload", "ok"),
        ("replace", "ok"),
        ("remove", "ok"),
    ]
    nothing = await bot.command("/remove", user_id=ADMIN, language_code="en")
    assert "no uploaded documents" in nothing.text
    others = await bot.command("/fjern", user_id=CITIZEN)
    assert "kun for Rådets medarbejdere" in others.text
    assert not bot.tg.errors


async def test_cancelling_an_upload_stores_nothing(staff_bot: Bot, tmp_path: Path) -> None:
    bot = staff_bot
    found = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf")
    cancelled = await press(bot, found, next(d for d in found.callback_data if d.endswith(":n")))
    assert cancelled.text == "Annulleret: solsikke.pdf er ikke tilføjet."
    assert not (bot.settings.uploads_path / "solsikke.pdf").exists()
    # The buttons are gone, so the upload cannot be confirmed after all.
    assert bot.tg.bot_messages(ADMIN)[-2].buttons == []
    assert [c["result"] for c in audit_lines(bot)] == ["cancelled"]


def test_fake_telegram_refuses_downloads_over_20_mb() -> None:
    import httpx

    with FakeTelegram(token="123456:TEST-token") as tg:
        message = tg.send_document(b"x", "big.pdf", user_id=5, declared_size=21 * 1024 * 1024)
        response = httpx.post(
            f"{tg.api_url}getFile", json={"file_id": message["document"]["file_id"]}
        )
        assert response.status_code == 400
        assert response.json()["description"] == "Bad Request: file is too big"
        small = tg.send_document(b"hello", "small.txt", user_id=5)
        got = httpx.post(
            f"{tg.api_url}getFile", json={"file_id": small["document"]["file_id"]}
        ).json()
        data = httpx.get(f"{tg.base_file_url}{tg.token}/{got['result']['file_path']}").content
        assert data == b"hello"


async def test_a_web_page_added_from_chat_is_fetched_answered_and_removable(
    start_bot: StartBot,  # noqa: F811
    tmp_path: Path,
    embedder,
    site,  # noqa: F811
) -> None:
    knowledge = tmp_path / "small-knowledge"
    knowledge.mkdir()
    for name in SMALL_KB:
        shutil.copy(KNOWLEDGE / name, knowledge / name)
    data_dir = tmp_path / "small-data"
    small = make_settings(
        data_dir, knowledge_dir=knowledge, curated_answers=False, fetch_delay_seconds=0
    )
    assert pipeline.run_ingest(small, embedder=embedder).exit_code == 0
    bot = await start_bot(
        answerer=Answerer(small, embedder=embedder),
        data_dir=data_dir,
        knowledge_dir=knowledge,
        curated_answers=False,
        fetch_delay_seconds=0,
    )
    make_html(tmp_path / "p.html", "Projekt Solsikke", f"<p>{FACT}</p>", date="2026-03-01")
    site.routes["/solsikke"] = page((tmp_path / "p.html").read_bytes())
    url = site.url("/solsikke")
    usage = await bot.command("/tilfoej", user_id=ADMIN)
    assert "Skriv adressen efter kommandoen" in usage.text
    before = len(bot.tg.bot_messages(ADMIN))
    bot.send(f"/tilfoej {url}", user_id=ADMIN)
    started, done = await bot.replies(ADMIN, 2, since=before)
    assert started.text.startswith("Henter") and done.text.startswith(f"{url} er tilføjet")
    text = "\n".join(p.text for p in await bot.answer(QUESTION, user_id=CITIZEN))
    assert "77 deltagere" in text
    listing = await bot.command("/kilder", user_id=CITIZEN)
    assert "Projekt Solsikke" in listing.text and "(webside)" in listing.text
    again = await bot.command(f"/tilfoej {url}", user_id=ADMIN)
    assert "allerede en kilde" in again.text
    # A page that cannot be fetched is named and not added.
    before = len(bot.tg.bot_messages(ADMIN))
    bot.send(f"/tilfoej {site.url('/findes-ikke')}", user_id=ADMIN)
    _, failed = await bot.replies(ADMIN, 2, since=before)
    assert "kunne ikke hentes" in failed.text and "ikke tilføjet" in failed.text
    choose = await bot.command("/fjern", user_id=ADMIN)
    assert choose.button_texts == [url]
    confirm = await press(bot, choose, choose.callback_data[0])
    removed = await press(
        bot, confirm, next(d for d in confirm.callback_data if d.startswith("rmy:"))
    )
    assert removed.text.startswith(f"{url} er fjernet")
    assert "77 deltagere" not in "\n".join(
        p.text for p in await bot.answer(QUESTION, user_id=CITIZEN)
    )
    assert [(c["action"], c["result"][:6]) for c in audit_lines(bot)] == [
        ("add-web", "ok"),
        ("add-web", "failed"),
        ("remove", "ok"),
    ]
    assert not bot.tg.errors


async def test_an_upload_with_a_chroma_server(
    start_bot: StartBot,  # noqa: F811
    tmp_path: Path,
    embedder,
) -> None:
    from tests.chroma_server import ChromaServer

    chroma = ChromaServer(tmp_path / "chroma-server").start()
    try:
        knowledge = tmp_path / "small-knowledge"
        knowledge.mkdir()
        for name in SMALL_KB:
            shutil.copy(KNOWLEDGE / name, knowledge / name)
        server = {"chroma_host": "127.0.0.1", "chroma_port": chroma.port, "curated_answers": False}
        small = make_settings(tmp_path / "data", knowledge_dir=knowledge, **server)
        assert pipeline.run_ingest(small, embedder=embedder).exit_code == 0
        bot = await start_bot(
            answerer=Answerer(small, embedder=embedder),
            data_dir=tmp_path / "data",
            knowledge_dir=knowledge,
            **server,
        )
        found = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", caption="Solsikke")
        done = await press(bot, found, next(d for d in found.callback_data if d.endswith(":y")))
        assert done.text.startswith("solsikke.pdf er tilføjet")
        text = "\n".join(p.text for p in await bot.answer(QUESTION, user_id=CITIZEN))
        assert "77 deltagere" in text
        # The chunks are in the server's collection, where another process would see them.
        from bot.store import KnowledgeStore

        assert "upload:solsikke.pdf" in KnowledgeStore.open(small).doc_versions()
        assert not bot.tg.errors
    finally:
        chroma.stop()


async def test_uploads_survive_a_restart_of_the_bot(
    start_bot: StartBot,  # noqa: F811
    staff_bot: Bot,
    tmp_path: Path,
    embedder,
) -> None:
    bot = staff_bot
    found = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", caption="Solsikke")
    await press(bot, found, next(d for d in found.callback_data if d.endswith(":y")))
    # A new process: a new answerer and application over the same DATA_DIR and knowledge/.
    settings = bot.settings.model_copy(update={"telegram_bot_token": None})
    restarted = await start_bot(
        answerer=Answerer(settings, embedder=embedder),
        data_dir=bot.settings.data_dir,
        knowledge_dir=bot.settings.knowledge_dir,
        curated_answers=False,
    )
    text = "\n".join(p.text for p in await restarted.answer(QUESTION, user_id=CITIZEN))
    assert "77 deltagere" in text
    choose = await restarted.command("/remove", user_id=ADMIN, language_code="en")
    assert choose.button_texts == ["solsikke.pdf"]


@pytest.mark.skipif(
    not _unprivileged_works(), reason="needs `unshare -U` to drop root's write access"
)
def test_uploads_work_with_a_read_only_knowledge_folder(tmp_path: Path, embedder) -> None:
    """The real bot process, as an unprivileged user, with knowledge/ read-only (compose.yaml)."""
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for name in SMALL_KB:
        shutil.copy(KNOWLEDGE / name, knowledge / name)
    data = tmp_path / "data"
    assert pipeline.run_ingest(make_settings(data, knowledge), embedder=embedder).exit_code == 0
    _read_only(knowledge)
    for item in [data, *data.rglob("*")]:  # DATA_DIR stays writable for the bot's user
        item.chmod(0o777 if item.is_dir() else 0o666)
    pdf = pdf_bytes(tmp_path, FACT)
    with FakeTelegram(token=TOKEN, bot_username="raadet_bot") as tg:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": tg.base_url,
            "ADMIN_USER_IDS": str(ADMIN),
            "DATA_DIR": str(data),
            "KNOWLEDGE_DIR": str(knowledge),
            "CURATED_ANSWERS": "false",
        }
        bot = subprocess.Popen(
            [UNSHARE, "-U", sys.executable, "-m", "bot", "telegram"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            tg.send_message("/start", user_id=ADMIN)
            tg.wait_for_bot_messages(ADMIN, 1, timeout=90)
            tg.send_document(pdf, "solsikke.pdf", user_id=ADMIN, caption="Solsikke")
            found = tg.wait_for_bot_messages(ADMIN, 2, timeout=60)[-1]
            tg.press_button(found, next(d for d in found.callback_data if d.endswith(":y")))
            done = tg.wait_for_bot_messages(ADMIN, 3, timeout=90)[-1]
            assert done.text.startswith("solsikke.pdf er tilføjet"), done.text
            tg.send_message(QUESTION, user_id=CITIZEN)
            answer = tg.wait_for_bot_messages(CITIZEN, 1, timeout=60)
            assert "77 deltagere" in "\n".join(m.text or "" for m in answer)
        finally:
            bot.terminate()
            try:
                bot.wait(30)
            except subprocess.TimeoutExpired:
                bot.kill()
    assert sorted(p.name for p in knowledge.iterdir()) == sorted(SMALL_KB)
    assert (data / "uploads" / "solsikke.pdf").exists()


async def test_a_second_change_waits_for_the_first_and_says_so(
    staff_bot: Bot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    bot = staff_bot
    first = await send_file(bot, pdf_bytes(tmp_path, FACT), "solsikke.pdf", caption="Solsikke")
    second = await send_file(
        bot, pdf_bytes(tmp_path, NEW_FACT, "b.pdf"), "andet.pdf", caption="Andet"
    )
    release = threading.Event()
    real_ingest = pipeline.run_ingest

    def held_ingest(*args, **kwargs):
        assert release.wait(TIMEOUT), "the first change was never released"
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_ingest", held_ingest)
    before = len(bot.tg.bot_messages(ADMIN))
    bot.tg.press_button(first, next(d for d in first.callback_data if d.endswith(":y")))
    bot.tg.press_button(second, next(d for d in second.callback_data if d.endswith(":y")))
    [waits] = await bot.replies(ADMIN, 1, since=before)
    assert waits.text == "En anden ændring kører; din venter på den."
    # Questions are answered while the change runs.
    assert (await bot.answer("Hvad er UngiFokus?", user_id=CITIZEN))[-1].callback_data
    release.set()
    done = await bot.replies(ADMIN, 2, since=before + 1)
    assert sorted(m.text.split(" ", 1)[0] for m in done) == ["andet.pdf", "solsikke.pdf"]
    assert all("er tilføjet" in m.text for m in done)
    assert [c["result"] for c in audit_lines(bot)] == ["ok", "ok"]

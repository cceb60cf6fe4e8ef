"""Load check of the Telegram face: many users asking at once through a fake Bot API server.

    python -m benchmarks.telegram_load [--users 50] [--per-user 5] [--think 2,8] [--ramp 5]

Runs the real `build_application(...)` Application (long polling, the production handlers,
AIORateLimiter, per-user rate limit at its default) against `tests.fake_telegram.FakeTelegram`
on 127.0.0.1. Every simulated user has a private chat and asks `--per-user` questions from
eval/questions.jsonl (answerable and not), one after the other: it sends a question, waits for
the bot's complete reply, "reads" for a random think time (uniform within --think
seconds), then asks the next. Users start spread over --ramp seconds. `--think 0,0 --ramp 0`
is a closed loop with no pauses at all (a stress test, not a realistic load).

Time to reply = from the user's message being queued in the fake server to the bot's last
reply message for it arriving there (the message with the 👍/👎 buttons, or the single reply
for statuses without buttons). Errors = the bot's "something went wrong"/rate-limit replies,
replies that do not match what the question should get, and error answers the fake server
sent to the bot.

Index: reuses DATA_DIR (default ./data) when it already holds documents (what
`python ingest.py --status` shows); otherwise builds one from knowledge/ into a temporary
DATA_DIR first (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from pydantic import SecretStr
from telegram import Update

from benchmarks.run import percentile, table
from bot.answer.core import Answerer
from bot.config import Settings
from bot.evaluate import load_questions
from bot.telegram.app import build_application
from bot.telegram.feedback import FeedbackStore
from bot.telegram.render import render_answer
from bot.telegram.texts import TEXTS
from tests.fake_telegram import FakeTelegram

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "eval" / "questions.jsonl"
TOKEN = "123456:LOAD-token"
FIRST_USER = 700001
TARGET_P95 = 1.5
ERROR_TEXTS = {text for key in ("error", "rate_limited") for text in TEXTS[key].values()}


@dataclass
class Reply:
    at: float
    text: str
    buttons: bool


class TimedFakeTelegram(FakeTelegram):
    """The fake server, also stamping each bot message with its arrival time and waking the
    user who waits for it (instead of 50 users polling the server's state)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_loop = loop
        self.replies: dict[int, list[Reply]] = {}
        self.signals: dict[int, asyncio.Event] = {}

    def _api_send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        message = super()._api_send_message(params)
        chat_id = message["chat"]["id"]
        reply = Reply(time.perf_counter(), message.get("text", ""), "reply_markup" in message)
        self.replies.setdefault(chat_id, []).append(reply)
        signal = self.signals.get(chat_id)
        if signal is not None:
            self.user_loop.call_soon_threadsafe(signal.set)
        return message


class AbandonedRequests(logging.Handler):
    """Counts requests the bot dropped mid-upload (aiohttp logs "Connection lost" for them):
    the typing indicator's sendChatAction, cancelled because the answer was already there."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class Expected:
    """What the bot should send for a question: how many parts, and whether with buttons."""

    parts: int
    buttons: bool


@dataclass
class Result:
    user: int
    question: str
    seconds: float
    ok: bool
    problem: str = ""


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def prepare_index() -> tuple[Settings, str, Path | None]:
    """Settings whose DATA_DIR holds an index: the configured one if it has documents, else a
    temporary one (returned third, to be removed afterwards)."""
    from bot.status import index_status

    settings = Settings()
    if settings.chroma_dir.exists():
        try:
            documents = index_status(settings)["documents"]
        except Exception as exc:  # an unreadable store: build a fresh one below
            logging.warning("cannot read the index in %s: %s", settings.data_dir, exc)
            documents = 0
        if documents:
            return settings, f"reused {settings.data_dir} ({documents} documents)", None
    from bot.ingest.pipeline import run_ingest

    data_dir = Path(tempfile.mkdtemp(prefix="telegram-load-"))
    settings = settings.model_copy(
        update={"data_dir": data_dir, "knowledge_dir": REPO / "knowledge"}
    )
    print(f"Building an index from knowledge/ into {data_dir} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    report = run_ingest(settings)
    if report.exit_code:
        raise SystemExit(f"ingest failed: {report.failures}")
    return settings, f"built from knowledge/ in {time.perf_counter() - started:.0f} s", data_dir


def expectations(answerer: Answerer, items: list[dict]) -> dict[str, Expected]:
    """Answer each question once outside Telegram (also warms every cache)."""
    expected = {}
    for item in items:
        answer = answerer.ask(item["question"])
        expected[item["question"]] = Expected(
            parts=len(render_answer(answer)), buttons=answer.status in ("answered", "not_found")
        )
    return expected


async def simulate_user(
    tg: TimedFakeTelegram,
    user_id: int,
    script: list[dict],
    expected: dict[str, Expected],
    think: tuple[float, float],
    delay: float,
    rng: random.Random,
    timeout: float,
) -> list[Result]:
    signal = asyncio.Event()
    tg.signals[user_id] = signal
    results = []
    await asyncio.sleep(delay)
    for i, item in enumerate(script):
        if i:
            await asyncio.sleep(rng.uniform(*think))
        question = item["question"]
        want = expected[question]
        before = len(tg.replies.get(user_id, []))
        signal.clear()
        sent = time.perf_counter()
        tg.send_message(question, user_id=user_id, language_code=item.get("language", "da"))
        deadline = sent + timeout
        problem = ""
        while True:
            new = tg.replies.get(user_id, [])[before:]
            if any(r.text in ERROR_TEXTS for r in new):
                problem = "bot error reply: " + next(r.text for r in new if r.text in ERROR_TEXTS)
                break
            if want.buttons and new and new[-1].buttons:
                break  # the last part of an answer carries the 👍/👎 buttons
            if not want.buttons and any(r.buttons for r in new):
                problem = "an answer with buttons where none was expected"
                break
            if not want.buttons and len(new) >= want.parts:
                break
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                problem = f"no complete reply within {timeout:.0f} s"
                break
            signal.clear()
            try:
                await asyncio.wait_for(signal.wait(), remaining)
            except TimeoutError:
                continue
        last = new[-1].at if new else time.perf_counter()
        results.append(Result(user_id, question, last - sent, not problem, problem))
    return results


async def load(args: argparse.Namespace) -> tuple[Run, list[str], str, dict[str, int]]:
    settings, index_note, temporary = prepare_index()
    try:
        return await _load(args, settings, index_note)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


async def _load(
    args: argparse.Namespace, settings: Settings, index_note: str
) -> tuple[Run, list[str], str, dict[str, int]]:
    answerer = Answerer(settings)
    answerer.warm_up()
    items = load_questions(QUESTIONS)
    expected = expectations(answerer, items)

    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    run = Run()
    with TimedFakeTelegram(loop, token=TOKEN, bot_username="raadet_load_bot") as tg:
        bot_settings = settings.model_copy(
            update={"telegram_bot_token": SecretStr(TOKEN), "telegram_base_url": tg.base_url}
        )
        with tempfile.TemporaryDirectory(prefix="telegram-load-fb-") as fb_dir:
            feedback = FeedbackStore(Path(fb_dir) / "feedback.sqlite3")
            app = build_application(bot_settings, answerer=answerer, feedback=feedback)
            await app.initialize()
            if app.post_init:
                await app.post_init(app)
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES
            )
            await app.start()
            try:
                users = []
                for n in range(args.users):
                    script = [
                        items[(n * args.per_user + k) % len(items)] for k in range(args.per_user)
                    ]
                    delay = rng.uniform(0, args.ramp) if args.ramp else 0.0
                    user_rng = random.Random(rng.random())
                    users.append(
                        simulate_user(
                            tg,
                            FIRST_USER + n,
                            script,
                            expected,
                            args.think,
                            delay,
                            user_rng,
                            args.timeout,
                        )
                    )
                run.started = time.perf_counter()
                for results in await asyncio.gather(*users):
                    run.results.extend(results)
                run.finished = time.perf_counter()
            finally:
                await app.updater.stop()
                await app.stop()
                await app.shutdown()
        server_errors = [
            f"{r.method} -> {r.status} {(r.response or {}).get('description')}" for r in tg.errors
        ]
        counts = {
            "sendMessage": len(tg.requests_for("sendMessage")),
            "sendChatAction": len(tg.requests_for("sendChatAction")),
            "getUpdates": len(tg.requests_for("getUpdates")),
        }
    return run, server_errors, index_note, counts


def parse_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument(
        "--think", type=parse_range, default=(2.0, 8.0), help="seconds between a user's questions"
    )
    parser.add_argument("--ramp", type=float, default=5.0, help="users start within this many s")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
    abandoned = AbandonedRequests()
    server_log = logging.getLogger("aiohttp.server")
    server_log.addHandler(abandoned)
    server_log.propagate = False

    run, server_errors, index_note, counts = asyncio.run(load(args))
    times = sorted(r.seconds for r in run.results)
    bot_errors = [r for r in run.results if not r.ok]
    wall = run.finished - run.started
    print(
        f"Machine: {os.cpu_count()} cores; index {index_note}; {args.users} users × "
        f"{args.per_user} questions; think {args.think[0]:g}–{args.think[1]:g} s; "
        f"ramp {args.ramp:g} s; Telegram calls: {counts}\n"
    )
    rows = [
        ("questions", str(len(run.results)), f"{args.users * args.per_user}"),
        ("errors (bot + fake server)", f"{len(bot_errors)} + {len(server_errors)}", "0"),
        ("time to reply p50", f"{percentile(times, 50):.3f} s", ""),
        ("time to reply p95", f"{percentile(times, 95):.3f} s", f"<= {TARGET_P95} s"),
        ("time to reply max", f"{times[-1]:.3f} s", ""),
        ("throughput", f"{len(times) / wall:.1f} questions/s over {wall:.1f} s", ""),
    ]
    print(table(("measure", "result", "target"), rows))
    for problem in [f"user {r.user}: {r.problem} ({r.question!r})" for r in bot_errors][:10]:
        print(f"- {problem}")
    for problem in server_errors[:10]:
        print(f"- fake server: {problem}")
    if abandoned.count:
        print(
            f"\nNote: {abandoned.count} request(s) were abandoned by the bot mid-upload "
            "(typing indicator cancelled because the answer was ready); not errors."
        )
    ok = not bot_errors and not server_errors and percentile(times, 95) <= TARGET_P95
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

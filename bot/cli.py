"""Command line faces of the answering core.

python -m bot                      terminal chat, or the Telegram bot if TELEGRAM_BOT_TOKEN is set
python -m bot ask "spørgsmål"      one answer, as a person reads it
python -m bot ask --json "..."     one JSON object (DESIGN section 5); no question: stdin batch
python -m bot chat                 interactive terminal chat (/ny resets, /kilder lists sources)
python -m bot eval FILE [--json]   evaluation over a question file
python -m bot telegram             the Telegram bot
python -m bot status               index status
python -m bot report [--days N] [--html FILE] [--json]
                                   the gap report for staff (refused, 👎, curated hits)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bot.config import Settings
from bot.errors import BotError, ConfigError, StoreError
from bot.logs import setup_logging

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Spørg Rådet")
    sub = parser.add_subparsers(dest="command")
    ask = sub.add_parser("ask", help="answer one question (or stdin lines)")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("chat", help="interactive terminal chat")
    evaluate = sub.add_parser("eval", help="run an evaluation file")
    evaluate.add_argument("file")
    evaluate.add_argument("--json", action="store_true")
    sub.add_parser("telegram", help="run the Telegram bot")
    status = sub.add_parser("status", help="show index status")
    status.add_argument("--json", action="store_true")
    report = sub.add_parser("report", help="staff: what the bot refuses, 👎 and curated hits")
    report.add_argument("--days", type=int, default=30, help="period in days (default 30)")
    report.add_argument("--html", type=Path, help="also write a self-contained HTML report")
    report.add_argument("--json", action="store_true", help="print the figures as JSON")
    feedback = sub.add_parser("feedback", help="staff: export or purge feedback votes")
    feedback.add_argument("action", choices=["export", "purge"])
    feedback.add_argument("--csv", action="store_true", help="export as CSV (default JSON lines)")
    feedback.add_argument(
        "--days", type=int, help="purge votes older than this (default: retention)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a face; returns the exit status."""
    args = _parser().parse_args(argv)
    settings = Settings()
    setup_logging(settings)
    if args.command is None:
        args.command = "telegram" if settings.telegram_bot_token else "chat"
    try:
        if args.command == "ask":
            return cmd_ask(settings, args)
        if args.command == "chat":
            from bot.chat import run_chat

            return run_chat(settings)
        if args.command == "eval":
            from bot.evaluate import run_eval_cli

            return run_eval_cli(settings, args.file, as_json=args.json)
        if args.command == "telegram":
            from bot.telegram.app import run

            return run(settings)
        if args.command == "status":
            return cmd_status(settings, args.json)
        if args.command == "feedback":
            return cmd_feedback(settings, args)
        if args.command == "report":
            return cmd_report(settings, args)
    except (ConfigError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    """One question from the arguments, or one per stdin line in batch mode."""
    from bot.answer.core import Answerer

    answerer = Answerer.started(settings)
    if args.question:
        answer = answerer.ask(" ".join(args.question))
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False))
        else:
            print(answer.full_text())
        return 0
    # Bytes, decoded leniently: one bad byte must not lose the rest of a batch.
    for raw in sys.stdin.buffer:
        question, chat = batch_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        if not args.json and not question.strip():
            continue
        answer = answerer.ask(question, chat_id=chat)
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            print(answer.full_text() + "\n", flush=True)
    return 0


def batch_line(line: str) -> tuple[str, str | None]:
    """A batch line: plain text, or `{"question": "...", "chat": "id"}` (one chat, one conversation).

    Every line gets one answer, so a blank line gets the polite "write a question" reply.
    """
    if line.lstrip().startswith("{"):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            return line, None
        if isinstance(data, dict) and isinstance(data.get("question"), str):
            chat = data.get("chat")
            return data["question"], None if chat is None else f"batch-{chat}"
    return line, None


def cmd_status(settings: Settings, as_json: bool) -> int:
    """Index, model, documents, last refresh, answers, refusals, latency and feedback."""
    from bot.ingest.cli import format_status
    from bot.metrics import Metrics
    from bot.status import index_status
    from bot.telegram.feedback import FeedbackStore

    status = index_status(settings)
    status["answers"] = Metrics(settings.data_dir / "metrics.sqlite3").summary()
    status["feedback"] = FeedbackStore(settings.data_dir / "feedback.sqlite3").counts()
    from bot import audit

    status["changes"] = audit.last(settings.data_dir, 5)
    if as_json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return 0
    answers = status["answers"]
    print(format_status(status))
    print(
        f"Answers (last {answers['days']} days): {answers['questions']}, refused "
        f"{answers['refused']} {answers['by_status']}; latency p50 {answers['latency_ms']['p50']} ms, "
        f"p95 {answers['latency_ms']['p95']} ms"
    )
    print(f"Feedback: 👍 {status['feedback']['up']}  👎 {status['feedback']['down']}")
    for change in status["changes"]:
        print(
            f"Change {change['time']} by {change['admin']}: {change['action']} "
            f"{change['document']}: {change['result']}"
        )
    return 0


def cmd_feedback(settings: Settings, args: argparse.Namespace) -> int:
    """Export the votes (JSON lines or CSV) or purge those past the retention period."""
    from bot.telegram.feedback import FeedbackStore

    store = FeedbackStore(settings.data_dir / "feedback.sqlite3")
    if args.action == "export":
        sys.stdout.write(store.export(as_csv=args.csv))
        return 0
    days = args.days if args.days is not None else settings.feedback_retention_days
    removed = store.purge(days)
    print(f"Deleted {removed} feedback votes older than {days} days.")
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """The gap report: printed, as JSON, and optionally as one HTML file."""
    from bot.embedding import make_embedder
    from bot.report import build_report, render_html, render_text

    report = build_report(settings, make_embedder(settings), days=max(1, args.days))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report))
    if args.html:
        args.html.write_text(render_html(report), encoding="utf-8")
        print(f"Wrote {args.html}", file=sys.stderr)
    return 0

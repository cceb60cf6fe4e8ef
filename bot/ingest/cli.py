"""Command line of `python ingest.py`: argument parsing, progress bar and summary table."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from bot import serving
from bot.config import Settings
from bot.errors import BotError, ConfigError, IngestLocked, LoaderError, StoreError
from bot.ingest.pipeline import IngestReport, run_ingest
from bot.logs import setup_logging
from bot.status import index_status

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python ingest.py", description="Refresh Spørg Rådet's index from knowledge/."
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders inside knowledge/")
    parser.add_argument("--rebuild", action="store_true", help="re-embed every document")
    parser.add_argument("--dry-run", action="store_true", help="report what would change")
    parser.add_argument("--status", action="store_true", help="show what the index holds")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--fetch", action="store_true", help="also download the web sources in sources.csv"
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="with --fetch: remove a page that answers 404/410 at once (default: after two runs)",
    )
    parser.add_argument(
        "--review",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="record a review of curated answers (knowledge/svar/*.md): today's date and the "
        "content of their sources; then refresh as usual",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another running ingest to finish (default: exit at once)",
    )
    return parser


def _progress_bar(enabled: bool) -> Callable[[int], Callable[[int], None]] | None:
    if not enabled:
        return None

    def start(total: int) -> Callable[[int], None]:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="chunk", desc="Embedding", leave=False)
        return bar.update

    return start


def format_report(report: IngestReport) -> str:
    """The summary table staff read after a refresh."""
    rows = [
        ("Documents added", len(report.added)),
        ("Documents updated", len(report.updated)),
        ("Documents unchanged", len(report.unchanged)),
        ("Documents deleted", len(report.deleted)),
        ("Chunks written", report.chunks_written),
        ("Chunks deleted", report.chunks_deleted),
        ("Vectors reused", report.vectors_reused),
        ("Failures", len(report.failures)),
        ("Time", f"{report.seconds:.1f} s"),
    ]
    if report.fetch:
        rows[-2:-2] = [
            ("Pages fetched", len(report.fetched)),
            ("Pages not modified", len(report.not_modified)),
            ("Pages failed", len(report.fetch_failed)),
            ("Pages gone", len(report.gone)),
        ]
    width = max(len(name) for name, _ in rows)
    lines = ["Dry run: nothing was changed." if report.dry_run else "Ingest finished."]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    for label, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("deleted", report.deleted),
        ("repaired", report.repaired),
    ):
        if names and len(names) <= 20:
            lines.append(f"  {label}: " + ", ".join(names))
    if report.curated.get("entries"):
        lines.append(
            f"  curated answers: {report.curated['entries']} valid, "
            f"{report.curated['serving']} served"
        )
    for failure in report.failures:
        lines.append(f"  FAILED {failure['document']}: {failure['reason']}")
    for item in report.needs_review:
        lines.append(f"  REVIEW {item['entry']}: {item['reason']} (not served until reviewed)")
    for warning in report.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def format_status(status: dict) -> str:
    """The `--status` listing."""
    lines = [
        f"Documents: {status['documents']}   Chunks: {status['chunks']}",
        f"Embedding: {status['embedding_backend']} / {status['embedding_model']} "
        f"(dimension {status['embedding_dim']})",
        f"Last refresh: {status['last_refresh'] or 'never'}",
        f"Curated answers stored: {status.get('curated_answers', 0)}",
    ]
    if status.get("build") == "incomplete":
        lines.append(
            "Build: INCOMPLETE - an ingest was interrupted; run `python ingest.py` to finish it"
        )
    new = [doc for doc in status["items"] if not doc["fitted"]]
    if new:
        lines.append(
            f"Added or changed since `make train`: {len(new)} (marked *); answers from them are "
            "gated on the evidence alone until the next `make train`"
        )
    for doc in status["items"]:
        mark = "" if doc["fitted"] else " *"
        lines.append(
            f"  {doc['source_date'] or '----------':<10}  {doc['doc_id']}  "
            f"({doc['chunks']} chunks){mark}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ingest CLI; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.prune and not args.fetch:
        parser.error("--prune only applies together with --fetch")
    if args.fetch and args.paths:
        parser.error("--fetch refreshes every web source; run it without file arguments")
    settings = Settings()
    setup_logging(settings, stream=sys.stderr)
    try:
        if args.status:
            status = index_status(settings)
            print(
                json.dumps(status, ensure_ascii=False, indent=2)
                if args.json
                else format_status(status)
            )
            return 0
        if args.review:
            for line in _review(settings, args.review):
                print(line, file=sys.stderr if args.json else sys.stdout)
        if not args.dry_run and serving.elsewhere(settings):
            _fail(serving.MESSAGE.format(data_dir=settings.data_dir), args.json)
            return 2
        report = run_ingest(
            settings,
            args.paths or None,
            rebuild=args.rebuild,
            dry_run=args.dry_run,
            fetch=args.fetch,
            prune=args.prune,
            progress=_progress_bar(sys.stdout.isatty() and not args.json),
            lock_wait_seconds=args.wait,
        )
    except (ConfigError, StoreError, IngestLocked) as exc:
        _fail(str(exc), args.json)
        return 2
    except BotError as exc:
        _fail(str(exc), args.json)
        return 2
    print(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
        if args.json
        else format_report(report)
    )
    return report.exit_code


def _review(settings: Settings, paths: list[Path]) -> list[str]:
    from bot.curated import is_curated_path
    from bot.ingest.curated import review

    knowledge = settings.knowledge_dir.resolve()
    for path in paths:
        resolved = path.resolve()
        if not path.is_file() or not resolved.is_relative_to(knowledge):
            raise ConfigError(f"{path} is not a file inside the knowledge folder {knowledge}.")
        if not is_curated_path(resolved.relative_to(knowledge)):
            raise ConfigError(f"{path} is not a curated answer (knowledge/svar/*.md).")
    try:
        return review(settings, paths)
    except LoaderError as exc:
        raise ConfigError(f"{exc}; nothing was recorded for it.") from exc


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": message, "exit_code": 2}, ensure_ascii=False))
    print(f"error: {message}", file=sys.stderr)

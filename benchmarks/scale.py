"""How cost grows with the knowledge: the knowledge base at 1x, 5x and 10x its size.

    python -m benchmarks.scale [--sizes 1 5 10]

Larger knowledge bases are made of variants of the shipped Markdown files: a new file name, a
title naming the variant, and every number shifted, so no two documents have the same text.
For each size: full build (time, chunks per second, peak RSS), no-change refresh, warm answer
p50/p95 and the answering process's RSS (the public questions, twice), and a cold
`python -m bot ask`. Prints a Markdown table. A benchmark, not a test: numbers are for the
machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

from benchmarks.run import REPO, timed

KNOWLEDGE = REPO / "knowledge"
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w])")
_TITLE = re.compile(r"^(title:\s*)(.+)$", re.MULTILINE)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_HELD = re.compile(r"DATE(\d+)D")

# Answers the public questions twice in one process; prints latencies and peak RSS as JSON.
_ANSWERS = """
import json, resource, statistics
from bot.answer.core import Answerer
from bot.config import Settings
from bot.evaluate import load_questions
items = load_questions(__import__("pathlib").Path(%r))
answerer = Answerer.started(Settings())
times = [answerer.ask(i["question"]).timings_ms["total"] for _ in range(2) for i in items]
q = statistics.quantiles(times, n=100, method="inclusive")
print(json.dumps({"p50": q[49], "p95": q[94],
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def variant(text: str, k: int) -> str:
    """The document with its title marked as variant k, every number shifted by k, and every
    ISO date moved k days (so it stays a real date: a broken date is a warning, and a run with
    warnings would not be the clean run this benchmark measures)."""
    text = _TITLE.sub(lambda m: f"{m.group(1)}{m.group(2)} (variant {k})", text, count=1)
    dates: list[str] = []

    def hold(match: re.Match) -> str:
        try:
            moved = date.fromisoformat(match.group(0)) + timedelta(days=k)
        except ValueError:
            return match.group(0)
        dates.append(moved.isoformat())
        return f"DATE{len(dates) - 1}D"  # letters around the digits: _NUMBER skips it

    text = _DATE.sub(hold, text)
    text = _NUMBER.sub(lambda m: str(int(m.group(0)) + k), text)
    return _HELD.sub(lambda m: dates[int(m.group(1))], text)


def knowledge_at(size: int, folder: Path) -> Path:
    """A knowledge folder with the shipped files and size-1 variants of each Markdown file."""
    shutil.copytree(KNOWLEDGE, folder)
    for path in sorted(KNOWLEDGE.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for k in range(1, size):
            (folder / f"{path.stem}-v{k}.md").write_text(variant(text, k), encoding="utf-8")
    return folder


def measure(size: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench-scale-{size}x-"))
    try:
        knowledge = knowledge_at(size, root / "knowledge")
        env = {**os.environ, "DATA_DIR": str(root / "data"), "KNOWLEDGE_DIR": str(knowledge)}
        ingest = [sys.executable, str(REPO / "ingest.py"), "--json"]
        build_s, build_mb, build = timed(ingest, env)
        report = json.loads(build.stdout)
        refresh_s, _, _ = timed(ingest, env)
        questions = str(REPO / "eval" / "questions.jsonl")
        _, _, answered = timed([sys.executable, "-c", _ANSWERS % questions], env)
        answers = json.loads(answered.stdout.strip().splitlines()[-1])
        cold_s, cold_mb, _ = timed([sys.executable, "-m", "bot", "ask", "Hvem er formand?"], env)
        chunks = report["chunks_written"]
        return {
            "size": f"{size}x",
            "documents": len(report["added"]),
            "chunks": chunks,
            "build_s": build_s,
            "chunks_per_s": chunks / build_s if build_s else 0.0,
            "build_mb": build_mb,
            "refresh_s": refresh_s,
            "p50_ms": answers["p50"],
            "p95_ms": answers["p95"],
            "answer_mb": answers["rss"],
            "cold_s": cold_s,
            "cold_mb": cold_mb,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10])
    args = parser.parse_args(argv)
    print(f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}\n")
    print(
        "| size | documents | chunks | full build | chunks/s | build RSS | no-change refresh "
        "| answer p50 | answer p95 | answer RSS | cold ask |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        m = measure(size)
        print(
            f"| {m['size']} | {m['documents']} | {m['chunks']} | {m['build_s']:.1f} s "
            f"| {m['chunks_per_s']:.1f} | {m['build_mb']:.0f} MB | {m['refresh_s']:.2f} s "
            f"| {m['p50_ms']:.1f} ms | {m['p95_ms']:.1f} ms | {m['answer_mb']:.0f} MB "
            f"| {m['cold_s']:.2f} s |",
            flush=True,
        )
    print(
        "\nTargets (issue 13): answer p95 <= 150 ms and RSS <= 600 MB at 10x; full build <= 30 s "
        "at 1x and linear beyond; no-change refresh <= 1 s at 1x and <= 3 s at 10x."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

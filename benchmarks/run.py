"""`make bench`: build and refresh time, memory, answer latency, and a LlamaIndex baseline.

Prints Markdown tables. Numbers are for the machine it runs on; the targets come from the
issues (full build < 60 s, no-change refresh < 3 s, ingest RSS < 800 MB; warm answer p50 <= 60 ms,
p95 <= 150 ms, cold `ask` <= 3 s, answer RSS <= 500 MB).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "eval" / "questions.jsonl"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MB) of one command, via GNU time."""
    with tempfile.NamedTemporaryFile("r") as out:
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", out.name, *cmd],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        seconds = time.perf_counter() - started
        peak_kb = float(out.read().strip().splitlines()[-1] or 0)
    return seconds, peak_kb / 1024, result


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def bench_ingest() -> list[tuple[str, str, str]]:
    data = tempfile.mkdtemp(prefix="bench-data-")
    env = {**os.environ, "DATA_DIR": data}
    cmd = [sys.executable, "ingest.py", "--json"]
    full_s, full_mb, full = timed(cmd, env)
    report = json.loads(full.stdout)
    again_s, again_mb, _ = timed(cmd, env)
    rebuild_s, _, rebuilt = timed([*cmd, "--rebuild"], env)
    reused = json.loads(rebuilt.stdout)["vectors_reused"]
    return [
        (
            "full build",
            f"{full_s:.1f} s ({report['chunks_written']} chunks, {len(report['added'])} documents)",
            "< 60 s (issue 13: <= 30 s)",
        ),
        ("no-change refresh", f"{again_s:.2f} s", "< 3 s (issue 13: <= 1 s)"),
        (
            "`--rebuild` with the vector cache warm",
            f"{rebuild_s:.1f} s ({reused} vectors reused)",
            "",
        ),
        ("peak RSS, full build", f"{full_mb:.0f} MB", "< 800 MB"),
        ("peak RSS, no-change refresh", f"{again_mb:.0f} MB", ""),
    ]


def bench_cold_start() -> list[tuple[str, str, str]]:
    env = dict(os.environ)
    runs = []
    peak = 0.0
    for _ in range(3):
        seconds, mb, result = timed(
            [sys.executable, "-m", "bot", "ask", "Hvem er formand for Rådet?"], env
        )
        assert result.returncode == 0, result.stderr
        runs.append(seconds)
        peak = max(peak, mb)
    torch = (
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, bot.cli; bot.cli.main(['ask', 'hej']); "
                "print('torch' in sys.modules, file=sys.stderr)",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        .stderr.strip()
        .splitlines()[-1]
    )
    return [
        ("cold `python -m bot ask` (median of 3)", f"{statistics.median(runs):.2f} s", "<= 3 s"),
        ("peak RSS of `ask`", f"{peak:.0f} MB", "<= 500 MB"),
        ("torch imported on the default path", torch, "False"),
    ]


def bench_answers() -> tuple[list[tuple[str, str, str]], list[tuple[str, ...]]]:
    from bot.answer.core import Answerer
    from bot.config import Settings
    from bot.evaluate import load_questions

    items = load_questions(QUESTIONS)
    answerer = Answerer(Settings())
    answerer.warm_up()
    latencies = []
    for _ in range(3):
        for item in items:
            latencies.append(answerer.ask(item["question"]).timings_ms["total"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("warm answer p50", f"{percentile(latencies, 50):.1f} ms", "<= 60 ms"),
        ("warm answer p95", f"{percentile(latencies, 95):.1f} ms", "<= 150 ms"),
        ("answering process RSS", f"{rss:.0f} MB", "<= 500 MB"),
    ]
    return rows, compare_baseline(answerer, items)


def compare_baseline(answerer, items: list[dict]) -> list[tuple[str, ...]]:
    """Our hybrid retrieval and answers vs the LlamaIndex starter retriever (top 2)."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from bot.language import detect
    from bot.llama_adapter import LlamaIndexEmbedding
    from bot.retrieval import Query

    LlamaSettings.llm = None
    store = ChromaVectorStore(chroma_collection=answerer.store.collection)
    index = VectorStoreIndex.from_vector_store(
        store, embed_model=LlamaIndexEmbedding(answerer.embedder)
    )
    baseline = index.as_retriever(similarity_top_k=2)
    answerable = [i for i in items if i.get("answerable", True) and i.get("sources")]

    def hit(files: list[str], item: dict) -> bool:
        return bool(set(item["sources"]) & set(files[:3]))

    base_hits, base_ms, our_hits, our_ms, cited_hits = [], [], [], [], []
    for item in answerable:
        started = time.perf_counter()
        nodes = baseline.retrieve(item["question"])
        base_ms.append((time.perf_counter() - started) * 1000)
        base_hits.append(hit([n.node.metadata.get("file", "") for n in nodes], item))

        started = time.perf_counter()
        passages = answerer.retriever.pool(
            Query.from_text(item["question"], "", answerer.retriever.vocabulary),
            size=answerer.params.pool_size,
            fusion=answerer.params.fusion,
            shift=answerer.params.shift_for(detect(item["question"])),
        )
        our_ms.append((time.perf_counter() - started) * 1000)
        files = list(dict.fromkeys(p.metadata["file"] for p in passages))
        our_hits.append(hit(files, item))
        answer = answerer.ask(item["question"])
        cited = [c.file for c in answer.citations] + [
            f for f in answer.top_files if f not in {c.file for c in answer.citations}
        ]
        cited_hits.append(hit(cited, item))

    def rate(values: list[bool]) -> str:
        return f"{sum(values) / len(values):.3f}"

    return [
        (
            "LlamaIndex starter: VectorStoreIndex retriever, top 2",
            rate(base_hits),
            f"{percentile(base_ms, 50):.1f}",
            f"{percentile(base_ms, 95):.1f}",
        ),
        (
            "Spørg Rådet hybrid retrieval (dense + BM25)",
            rate(our_hits),
            f"{percentile(our_ms, 50):.1f}",
            f"{percentile(our_ms, 95):.1f}",
        ),
        ("Spørg Rådet answer (cited, then retrieved)", rate(cited_hits), "", ""),
    ]


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    print(f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}\n")
    print("## Ingest\n")
    print(table(("measure", "result", "target"), bench_ingest()))
    print("\n## Answering\n")
    rows, baseline = bench_answers()
    print(table(("measure", "result", "target"), rows + bench_cold_start()))
    print(f"\n## Retrieval vs baseline ({QUESTIONS.name}, answerable questions)\n")
    print(table(("retriever", "source hit@3", "p50 ms", "p95 ms"), baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())

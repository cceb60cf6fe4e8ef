"""A refresh while the bot answers: no errors, no stalls, and the new content served soon after."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time

import pytest

from bot.answer.core import Answerer
from bot.ingest.pipeline import run_ingest
from tests.chroma_server import ChromaServer
from tests.conftest import REPO, make_settings

QUESTION = "Hvad er Rådets vision?"
NEW_FACT = "\n## Nyt mål\nRådet vil i 2031 evaluere alle ni investeringer samlet.\n"


class AskLoop(threading.Thread):
    """Asks the same question again and again, recording status and latency."""

    def __init__(self, answerer: Answerer) -> None:
        super().__init__(daemon=True)
        self.answerer = answerer
        self.samples: list[tuple[float, str, float]] = []  # (time, status, ms)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            answer = self.answerer.ask(QUESTION)
            self.samples.append((time.monotonic(), answer.status, answer.timings_ms["total"]))


def _serve_during(answerer: Answerer, refresh) -> dict:
    loop = AskLoop(answerer)
    loop.start()
    time.sleep(1.0)
    started = time.monotonic()
    refresh()
    ended = time.monotonic()
    deadline = ended + 15
    served_at = None
    while time.monotonic() < deadline:
        if "2031" in answerer.ask("Hvornår vil Rådet evaluere alle ni investeringer samlet?").text:
            served_at = time.monotonic()
            break
        time.sleep(0.2)
    loop.stop.set()
    loop.join(timeout=10)
    before = [ms for t, _, ms in loop.samples if t < started]
    during = [ms for t, _, ms in loop.samples if started <= t <= ended]
    figures = {
        "answers_during": len(during),
        "errors": sum(1 for _, status, _ in loop.samples if status != "answered"),
        "p95_before_ms": round(statistics.quantiles(before, n=20)[-1], 1)
        if len(before) > 1
        else None,
        "p95_during_ms": round(statistics.quantiles(during, n=20)[-1], 1)
        if len(during) > 1
        else None,
        "new_fact_after_s": round(served_at - ended, 2) if served_at else None,
        "refresh_s": round(ended - started, 2),
    }
    print(f"refresh-while-serving: {figures}")
    return figures


def test_embedded_refresh_in_process_while_answering(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    answerer = Answerer(settings, embedder=embedder)
    answerer.warm_up()

    def refresh() -> None:
        (small_kb / "vision.md").write_text(
            (small_kb / "vision.md").read_text(encoding="utf-8") + NEW_FACT, encoding="utf-8"
        )
        report = run_ingest(settings, store=answerer.store, embedder=embedder)
        assert report.updated == ["vision.md"]

    figures = _serve_during(answerer, refresh)
    assert figures["errors"] == 0 and figures["answers_during"] > 0
    assert figures["new_fact_after_s"] is not None and figures["new_fact_after_s"] < 10


@pytest.mark.parametrize("mode", ["server"])
def test_server_mode_refresh_from_the_cli_while_answering(tmp_path, small_kb, embedder, mode):
    server = ChromaServer(tmp_path / "chroma-server").start()
    try:
        settings = make_settings(
            tmp_path / "data", small_kb, chroma_host="127.0.0.1", chroma_port=server.port
        )
        run_ingest(settings, embedder=embedder)
        answerer = Answerer(settings, embedder=embedder)
        answerer.warm_up()
        env = {
            **os.environ,
            "DATA_DIR": str(tmp_path / "data"),
            "KNOWLEDGE_DIR": str(small_kb),
            "CHROMA_HOST": "127.0.0.1",
            "CHROMA_PORT": str(server.port),
        }

        def refresh() -> None:
            (small_kb / "vision.md").write_text(
                (small_kb / "vision.md").read_text(encoding="utf-8") + NEW_FACT, encoding="utf-8"
            )
            result = subprocess.run(
                [sys.executable, str(REPO / "ingest.py")],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stderr

        figures = _serve_during(answerer, refresh)
        assert figures["errors"] == 0 and figures["answers_during"] > 0
        assert figures["new_fact_after_s"] is not None and figures["new_fact_after_s"] < 10
    finally:
        server.stop()

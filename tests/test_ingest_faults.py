"""One bad file or manifest row never stops an ingest: it is named, and the rest is indexed."""

from __future__ import annotations

import os

import pytest

from bot.ingest.pipeline import run_ingest
from bot.store import KnowledgeStore
from tests.conftest import make_settings

GOOD = {"vision.md", "projekt-ungifokus.md", "raadet-forside-2024.txt"}


def indexed(settings) -> set[str]:
    return {c.metadata["file"] for c in KnowledgeStore.open(settings).all_chunks()}


@pytest.mark.parametrize("bad_date", ["2024-13-45", "2023-02-30"])
def test_a_front_matter_date_that_is_not_a_real_date_is_a_warning(
    tmp_path, small_kb, embedder, bad_date
):
    (small_kb / "bad-date.md").write_text(
        f"---\ntitle: Bad date\nsource_date: {bad_date}\n---\n\n# Bad date\n\nRådet mødes om foråret.\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 0, report.failures
    assert any("bad-date.md" in w and bad_date in w for w in report.warnings), report.warnings
    assert indexed(settings) == GOOD | {"bad-date.md"}


def test_a_symlink_out_of_the_knowledge_folder_is_skipped_and_named(tmp_path, small_kb, embedder):
    outside = tmp_path / "secret.md"
    outside.write_text("# Hemmelig\n\nDette må ikke indekseres.\n", encoding="utf-8")
    os.symlink(outside, small_kb / "link.md")
    os.symlink(small_kb / "loop-a.md", small_kb / "loop-b.md")
    os.symlink(small_kb / "loop-b.md", small_kb / "loop-a.md")
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)
    assert indexed(settings) == GOOD
    assert any("link.md" in w and "outside" in w for w in report.warnings), report.warnings
    assert any("loop-a.md" in w and "symlink" in w for w in report.warnings), report.warnings


def test_an_invalid_byte_in_the_manifest_loses_only_that_row(tmp_path, small_kb, embedder):
    manifest = small_kb / "sources.csv"
    manifest.write_bytes(
        manifest.read_bytes() + b"other.txt,Bad \xff title,https://x.example/,2024-01-01,page\n"
    )
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 0
    assert any("sources.csv line" in w and "UTF-8" in w for w in report.warnings), report.warnings
    chunks = KnowledgeStore.open(settings).all_chunks()
    forside = next(c for c in chunks if c.metadata["file"] == "raadet-forside-2024.txt")
    assert forside.metadata["source_date"] == "2024-04-17"  # the good rows still apply


def test_a_typo_in_the_manifest_header_is_named(tmp_path, small_kb, embedder):
    manifest = small_kb / "sources.csv"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("source_date", "sourcedate", 1), encoding="utf-8")
    report = run_ingest(make_settings(tmp_path / "data", small_kb), embedder=embedder)
    assert any("sourcedate" in w for w in report.warnings), report.warnings


def test_a_binary_file_under_a_text_name_fails_alone(tmp_path, small_kb, embedder):
    (small_kb / "picture.md").write_bytes(bytes(range(256)) * 40)
    settings = make_settings(tmp_path / "data", small_kb)
    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 1
    assert [f["document"] for f in report.failures] == ["picture.md"]
    assert "binary" in report.failures[0]["reason"]
    assert indexed(settings) == GOOD


def test_files_over_the_size_or_unit_limits_fail_alone_with_the_limit_named(
    tmp_path, small_kb, embedder
):
    (small_kb / "huge.txt").write_text("Rådet mødes. " * 2000, encoding="utf-8")
    settings = make_settings(tmp_path / "data", small_kb, max_document_bytes=20_000)
    report = run_ingest(settings, embedder=embedder)
    assert [f["document"] for f in report.failures] == ["huge.txt"]
    assert "MAX_DOCUMENT_BYTES" in report.failures[0]["reason"]

    (small_kb / "many.md").write_text(
        "# Mange\n\n" + "".join(f"Sætning nummer {i} om Rådet. " for i in range(400)),
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "data2", small_kb, max_document_units=100)
    report = run_ingest(settings, embedder=embedder)
    failed = {f["document"]: f["reason"] for f in report.failures}
    assert "MAX_DOCUMENT_UNITS" in failed["many.md"]
    assert "many.md" not in indexed(settings) and indexed(settings) >= GOOD


def test_a_killed_first_build_is_marked_incomplete_and_finished_by_the_next_run(
    tmp_path, small_kb, embedder
):
    from bot.status import index_status
    from tests.test_ingest import run_cli

    data = tmp_path / "data"
    env = {"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb), "SPOERG_CRASH_AT": "after-upsert"}
    assert run_cli(env=env).returncode == -9
    settings = make_settings(data, small_kb)
    status = index_status(settings)
    assert status["build"] == "incomplete" and status["documents"] < len(GOOD)
    shown = run_cli("--status", env={"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb)})
    assert "INCOMPLETE" in shown.stdout

    report = run_ingest(settings, embedder=embedder)
    assert report.exit_code == 0
    assert index_status(settings)["build"] == "complete"
    assert indexed(settings) == GOOD


def test_a_killed_rebuild_leaves_no_orphan_collection_after_the_next_ingest(
    tmp_path, small_kb, embedder
):
    from tests.test_ingest import run_cli

    data = tmp_path / "data"
    settings = make_settings(data, small_kb)
    run_ingest(settings, embedder=embedder)
    env = {"DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb), "SPOERG_CRASH_AT": "after-upsert"}
    assert run_cli("--rebuild", env=env).returncode == -9
    store = KnowledgeStore.open(settings)
    assert store.sibling(f"{store.name}-rebuild").exists()
    report = run_ingest(settings, embedder=embedder)
    assert any("interrupted --rebuild" in w for w in report.warnings)
    assert not store.sibling(f"{store.name}-rebuild").exists()
    assert indexed(settings) == GOOD

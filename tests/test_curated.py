"""Curated answers: loading and validation, review, matching, and never serving a stale entry.

Real loaders, a real Chroma store and the real embedder throughout; the matcher is the shipped
fitted one (bot/answer/curated_params.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from bot.answer.core import Answerer
from bot.curated import parse_entry
from bot.errors import LoaderError
from bot.ingest.cli import main as ingest_main
from bot.ingest.curated import review
from bot.ingest.pipeline import run_ingest
from tests.conftest import REPO, make_settings

ENTRY = """---
id: vision
questions:
  da:
    - Hvad er Rådets vision?
    - Hvad vil Rådet for Sociale Investeringer opnå på lang sigt?
  en:
    - What is the Council's vision?
sources:
  - vision.md
reviewed: 2026-11-01
expires: {expires}
reviewer: Sekretariatet
---
## Dansk
Rådets vision handler om sociale investeringer [1].

## English
The Council's vision is about social investments [1].
"""


def write_entry(knowledge: Path, text: str, name: str = "vision.md") -> Path:
    folder = knowledge / "svar"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def ingest(settings, embedder, **options):
    return run_ingest(settings, embedder=embedder, **options)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t.replace("reviewer: Sekretariatet\n", ""), "reviewer"),
        (lambda t: t.replace("  - vision.md", "  - findes-ikke.md"), "not in the knowledge base"),
        (
            lambda t: t.replace("opnå på lang sigt? [1]", "x").replace(
                "investeringer [1].", "x [2]."
            ),
            "[2]",
        ),
        (lambda t: t.split("## English")[0], "English"),
        (lambda t: t.replace("questions:", "questions: [oops"), "not valid YAML"),
        (lambda t: t.replace("reviewed: 2026-11-01", "reviewed: 2026-13-45"), "reviewed"),
        (
            lambda t: t.replace(
                "## Dansk\nRådets vision handler om sociale investeringer [1].",
                "## Dansk\nUden kilde.",
            ),
            "cites no source",
        ),
    ],
)
def test_an_invalid_curated_file_is_refused_with_its_reason(change, reason) -> None:
    text = change(ENTRY.format(expires="2027-11-01"))
    with pytest.raises(LoaderError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_entry(text, "svar/vision.md", {"vision.md"})


def test_a_valid_curated_file_parses_into_both_languages() -> None:
    entry = parse_entry(ENTRY.format(expires="2027-11-01"), "svar/vision.md", {"vision.md"})
    assert entry.id == "vision"
    assert entry.sources == ("vision.md",)
    assert entry.questions["en"] == ("What is the Council's vision?",)
    assert "[1]" in entry.answers["da"] and "[1]" in entry.answers["en"]
    assert entry.expires == date(2027, 11, 1)


def test_one_broken_curated_file_fails_alone(small_kb: Path, tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data", small_kb)
    good = write_entry(small_kb, ENTRY.format(expires="2099-01-01"))
    write_entry(
        small_kb,
        ENTRY.replace("vision.md", "nope.md").replace("id: vision", "id: other"),
        "broken.md",
    )
    review(settings, [good])
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    assert [f["document"] for f in report.failures] == ["svar/broken.md"]
    assert "nope.md" in report.failures[0]["reason"]
    assert report.curated == {"entries": 1, "serving": 1}
    # The curated file is not a document to quote from: the three knowledge files are indexed.
    assert sorted(report.added) == ["projekt-ungifokus.md", "raadet-forside-2024.txt", "vision.md"]


# -- review and staleness --------------------------------------------------------------------


@pytest.fixture
def served(small_kb: Path, tmp_path: Path, embedder):
    """A small knowledge base with one reviewed curated entry, ingested, and its answerer."""
    settings = make_settings(tmp_path / "data", small_kb)
    path = write_entry(small_kb, ENTRY.format(expires="2099-01-01"))
    review(settings, [path])
    assert ingest(settings, embedder).exit_code == 0
    answerer = Answerer(settings, embedder=embedder)
    answerer.warm_up()
    return settings, answerer, path


def _fresh(answerer: Answerer) -> None:
    answerer.retriever._checked_at = 0.0  # skip the 5-second recheck interval


def test_review_records_todays_date_and_the_source_hashes(served) -> None:
    _, _, path = served
    text = path.read_text(encoding="utf-8")
    assert f"reviewed: {date.today().isoformat()}" in text
    assert "source_hashes:" in text and "vision.md:" in text
    # The answer body is kept exactly.
    assert "Rådets vision handler om sociale investeringer [1]." in text


def test_a_matching_question_gets_the_curated_answer_in_each_language(served) -> None:
    _, answerer, _ = served
    danish = answerer.ask("Hvad er Rådets vision?")
    assert danish.status == "curated" and not danish.refused
    assert danish.text.startswith("Svar på: Hvad er Rådets vision?")
    assert "Rådets vision handler om sociale investeringer [1]." in danish.text
    assert f"gennemgået {date.today().isoformat()}" in danish.text
    assert [c.file for c in danish.citations] == ["vision.md"]
    assert danish.citations[0].title and danish.citations[0].url
    english = answerer.ask("What is the Council's vision?")
    assert english.status == "curated" and english.language == "en"
    assert english.text.startswith("Answer to: What is the Council's vision?")
    assert "The Council's vision is about social investments [1]." in english.text
    payload = english.to_json()
    assert payload["status"] == "curated"
    assert set(payload["curated"]) == {"id", "question", "reviewed", "score"}
    assert payload["curated"]["id"] == "vision"


def test_an_unrelated_question_goes_to_the_normal_pipeline(served) -> None:
    _, answerer, _ = served
    answer = answerer.ask("Hvor mange unge er med i UngiFokus?")
    assert answer.status != "curated"
    assert answer.curated is None


def test_a_changed_source_is_never_served_and_named_for_review(served, embedder) -> None:
    settings, answerer, _ = served
    source = settings.knowledge_dir / "vision.md"
    source.write_text(source.read_text(encoding="utf-8") + "\nEn ny sætning.\n", encoding="utf-8")
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    assert report.needs_review == [
        {"entry": "svar/vision.md", "reason": report.needs_review[0]["reason"]}
    ]
    assert "vision.md changed after the review" in report.needs_review[0]["reason"]
    _fresh(answerer)
    assert answerer.ask("Hvad er Rådets vision?").status != "curated"
    # Reviewed again: served again.
    review(settings, [settings.knowledge_dir / "svar" / "vision.md"])
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    assert answerer.ask("Hvad er Rådets vision?").status == "curated"


def test_a_source_changed_in_the_index_without_the_curated_check_is_not_served(
    served, embedder
) -> None:
    """Even when only the document is re-ingested (a scoped run), the entry stops at once."""
    settings, answerer, _ = served
    source = settings.knowledge_dir / "vision.md"
    source.write_text(
        source.read_text(encoding="utf-8") + "\nEndnu en sætning.\n", encoding="utf-8"
    )
    ingest(settings, embedder, paths=[source])
    _fresh(answerer)
    assert answerer.ask("Hvad er Rådets vision?").status != "curated"


def test_a_removed_source_is_never_served(served, embedder) -> None:
    settings, answerer, _ = served
    (settings.knowledge_dir / "vision.md").unlink()
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    reasons = [f["reason"] for f in report.failures] + [r["reason"] for r in report.needs_review]
    assert any("vision.md" in r for r in reasons)
    _fresh(answerer)
    assert answerer.ask("Hvad er Rådets vision?").status != "curated"


def test_an_expired_entry_is_never_served(small_kb: Path, tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data", small_kb)
    text = ENTRY.format(expires="2024-06-01").replace(
        "reviewed: 2026-11-01", "reviewed: 2024-01-01"
    )
    path = write_entry(small_kb, text)
    review(settings, [path], today=date(2024, 1, 2))
    assert "expires: 2024-06-01" in path.read_text(encoding="utf-8")
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    assert report.needs_review[0]["reason"] == "expired on 2024-06-01"
    answerer = Answerer(settings, embedder=embedder)
    assert answerer.ask("Hvad er Rådets vision?").status != "curated"
    # A review today renews it for its review interval and it is served again.
    review(settings, [path])
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    assert answerer.ask("Hvad er Rådets vision?").status == "curated"


def test_an_unreviewed_entry_is_not_served(small_kb: Path, tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data", small_kb)
    write_entry(small_kb, ENTRY.format(expires="2099-01-01"))
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    assert "not reviewed yet" in report.needs_review[0]["reason"]
    answerer = Answerer(settings, embedder=embedder)
    assert answerer.ask("Hvad er Rådets vision?").status != "curated"


def test_a_follow_up_is_matched_on_its_own_words_only(served) -> None:
    _, answerer, _ = served
    first = answerer.ask("Hvad er Rådets vision?", chat_id="c1")
    assert first.status == "curated"
    # With the previous question's words this would look like the entry; on its own it does not.
    follow_up = answerer.ask("og hvad med UngiFokus?", chat_id="c1")
    assert follow_up.status != "curated"


def test_curated_answers_can_be_turned_off(served, embedder) -> None:
    settings, _, _ = served
    off = Answerer(settings.model_copy(update={"curated_answers": False}), embedder=embedder)
    assert off.ask("Hvad er Rådets vision?").status != "curated"


# -- the command line ------------------------------------------------------------------------


def test_ingest_review_command_records_and_refreshes(
    small_kb: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KNOWLEDGE_DIR", str(small_kb))
    path = write_entry(small_kb, ENTRY.format(expires="2099-01-01"))
    assert ingest_main([]) == 1  # not reviewed yet
    assert "REVIEW svar/vision.md: not reviewed yet" in capsys.readouterr().out
    assert ingest_main(["--review", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Reviewed svar/vision.md: 1 source(s) recorded" in out
    assert "curated answers: 1 valid, 1 served" in out
    assert ingest_main(["--review", str(small_kb / "vision.md")]) == 2  # not a curated answer


def test_ask_json_reports_a_curated_reply(served, tmp_path: Path) -> None:
    settings, _, _ = served
    env = {
        "DATA_DIR": str(settings.data_dir),
        "KNOWLEDGE_DIR": str(settings.knowledge_dir),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "What is the Council's vision?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "curated" and payload["refused"] is False
    assert payload["curated"]["id"] == "vision"
    assert payload["curated"]["question"] == "What is the Council's vision?"
    assert payload["citations"][0]["file"] == "vision.md"

"""Curated answers: loading and validation, review, matching, and never serving a stale entry.

Real loaders, a real Chroma store and the real embedder throughout; the matcher is the shipped
fitted one (bot/answer/curated_params.json).
"""

from __future__ import annotations

import json
import shutil
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
from tests.conftest import KNOWLEDGE, REPO, make_settings

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
        (lambda t: t.replace("reviewed: 2026-11-01", "reviewed: 2026-13-45"), "not a real date"),
        (
            lambda t: t.replace(
                "## Dansk\nRådets vision handler om sociale investeringer [1].",
                "## Dansk\nUden kilde.",
            ),
            "cites no source",
        ),
        (
            lambda t: t.replace("sources:", "not:\n  da:\n    - hvad er rådets vision\nsources:"),
            "is both under questions: and not:",
        ),
        (
            lambda t: t.replace(
                "sources:", "declined:\n  en:\n    - What is the Council's vision?\nsources:"
            ),
            "is both under questions: and declined:",
        ),
        (lambda t: t.replace("sources:", "not: [en liste]\nsources:"), "not must list"),
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
    assert entry.not_questions == {"da": (), "en": ()}


def test_questions_an_entry_does_not_answer_are_read_per_language() -> None:
    text = ENTRY.format(expires="2027-11-01").replace(
        "sources:",
        "not:\n  da:\n    - Hvad er DSI's vision?\n  en:\n    - What is Odense's vision?\nsources:",
    )
    entry = parse_entry(text, "svar/vision.md", {"vision.md"})
    assert entry.negatives() == [
        ("da", "Hvad er DSI's vision?"),
        ("en", "What is Odense's vision?"),
    ]


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


def test_a_question_two_entries_claim_fails_the_second_file(small_kb: Path, tmp_path) -> None:
    """A variant is served word for word, so it may belong to one entry only."""
    from bot.ingest.curated import load_entries

    write_entry(small_kb, ENTRY.format(expires="2099-01-01"))
    other = ENTRY.format(expires="2099-01-01").replace("id: vision", "id: vision-to")
    write_entry(small_kb, other.replace("Hvad er Rådets vision?", "hvad er rådets vision"), "x.md")
    entries, failures = load_entries(small_kb)
    assert [e.id for e in entries] == ["vision"]
    [failure] = failures
    assert (
        failure["document"] == "svar/x.md"
        and "already a question of svar/vision.md" in (failure["reason"])
    )


# -- review and staleness (real shipped entries over a copy of their sources) -----------------

ENTRIES = ("vision", "social-investering", "hvad-er-raadet", "kommissorium")
SOURCES = (
    "vision.md",
    "raadet-forside-2024.txt",
    "hvad-er-en-social-investering.md",
    "faktaark-kort-om-raadet.md",
    "kommissorium.md",
    "sources.csv",
)


@pytest.fixture
def curated_kb(tmp_path: Path) -> Path:
    """Four shipped curated entries and the knowledge files they rest on."""
    target = tmp_path / "knowledge"
    (target / "svar").mkdir(parents=True)
    for name in SOURCES:
        shutil.copy(KNOWLEDGE / name, target / name)
    for entry in ENTRIES:
        shutil.copy(KNOWLEDGE / "svar" / f"{entry}.md", target / "svar" / f"{entry}.md")
    return target


def variant(knowledge: Path, language: str, entry: str = "vision") -> str:
    """The entry's first question variant in a language (what staff wrote it for)."""
    text = (knowledge / "svar" / f"{entry}.md").read_text(encoding="utf-8")
    return parse_entry(text, f"svar/{entry}.md", set(SOURCES)).questions[language][0]


@pytest.fixture
def served(curated_kb: Path, tmp_path: Path, embedder):
    """The shipped entries, reviewed as shipped, ingested, and an answerer over them."""
    settings = make_settings(tmp_path / "data", curated_kb)
    report = ingest(settings, embedder)
    assert report.exit_code == 0, (report.failures, report.needs_review)
    assert report.curated == {"entries": 4, "serving": 4}
    answerer = Answerer(settings, embedder=embedder)
    answerer.warm_up()
    return settings, answerer, curated_kb / "svar" / "vision.md"


def _fresh(answerer: Answerer) -> None:
    answerer.retriever._checked_at = 0.0  # skip the 5-second recheck interval


def test_review_records_todays_date_and_the_source_hashes(curated_kb: Path, tmp_path) -> None:
    settings = make_settings(tmp_path / "data", curated_kb)
    path = curated_kb / "svar" / "vision.md"
    before = path.read_text(encoding="utf-8")
    text = before.replace("source_hashes:", "old_hashes:")
    path.write_text(text, encoding="utf-8")
    [line] = review(settings, [path], today=date(2027, 3, 1))
    assert (
        line
        == "Reviewed svar/vision.md: 2 source(s) recorded, reviewed 2027-03-01, expires 2027-12-01."
    )
    after = path.read_text(encoding="utf-8")
    assert "reviewed: 2027-03-01" in after
    entry = parse_entry(after, "svar/vision.md", set(SOURCES))
    assert set(entry.source_hashes) == {"vision.md", "raadet-forside-2024.txt"}
    # The answers are kept exactly.
    assert after.split("---\n", 2)[2] == before.split("---\n", 2)[2]


def test_a_matching_question_gets_the_curated_answer_in_each_language(served) -> None:
    settings, answerer, _ = served
    question = variant(settings.knowledge_dir, "da")
    danish = answerer.ask(question)
    assert danish.status == "curated" and not danish.refused
    assert danish.text.startswith(f"Svar på: {question}")
    assert "gennemgået 2026-12-01" in danish.text
    assert {c.file for c in danish.citations} == {"vision.md", "raadet-forside-2024.txt"}
    assert all(c.title and c.url and c.date for c in danish.citations)
    english_question = variant(settings.knowledge_dir, "en")
    english = answerer.ask(english_question)
    assert english.status == "curated" and english.language == "en"
    assert english.text.startswith(f"Answer to: {english_question}")
    assert "reviewed 2026-12-01" in english.text
    payload = english.to_json()
    assert payload["status"] == "curated"
    assert set(payload["curated"]) == {"id", "question", "reviewed", "score"}
    assert payload["curated"]["id"] == "vision"


def test_a_suggested_entry_chosen_by_the_user_is_served_with_its_own_question(served) -> None:
    settings, answerer, _ = served
    chosen = answerer.curated_by_id("vision", "en", chat_id="c9")
    question = variant(settings.knowledge_dir, "en")
    assert chosen.status == "curated" and chosen.language == "en"
    assert chosen.text.startswith(f"Answer to: {question}") and chosen.citations
    assert chosen.to_json()["curated"]["chosen"] is True
    assert answerer.curated_by_id("no-such-entry", "da") is None


def test_an_unrelated_question_goes_to_the_normal_pipeline(served) -> None:
    _, answerer, _ = served
    answer = answerer.ask("Hvad koster en busbillet til Randers?")
    assert answer.status != "curated"
    assert answer.curated is None


def test_a_changed_source_is_never_served_and_named_for_review(served, embedder) -> None:
    settings, answerer, path = served
    question = variant(settings.knowledge_dir, "da")
    source = settings.knowledge_dir / "vision.md"
    source.write_text(source.read_text(encoding="utf-8") + "\nEn ny sætning.\n", encoding="utf-8")
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    [item] = report.needs_review
    assert item["entry"] == "svar/vision.md"
    assert "vision.md changed after the review" in item["reason"]
    _fresh(answerer)
    assert answerer.ask(question).status != "curated"
    # Nor when it is chosen from a suggestion made before the change.
    assert answerer.curated_by_id("vision", "da") is None
    # Reviewed again: served again.
    review(settings, [path])
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    assert answerer.ask(question).status == "curated"
    assert answerer.curated_by_id("vision", "da").status == "curated"


def test_a_source_changed_in_the_index_alone_stops_the_entry_at_once(served, embedder) -> None:
    """Even when only the document is re-ingested (a scoped run), the entry stops."""
    settings, answerer, _ = served
    question = variant(settings.knowledge_dir, "da")
    source = settings.knowledge_dir / "vision.md"
    source.write_text(source.read_text(encoding="utf-8") + "\nEndnu en.\n", encoding="utf-8")
    ingest(settings, embedder, paths=[source])
    _fresh(answerer)
    assert answerer.ask(question).status != "curated"


def test_a_removed_source_is_never_served(served, embedder) -> None:
    settings, answerer, _ = served
    question = variant(settings.knowledge_dir, "da")
    (settings.knowledge_dir / "vision.md").unlink()
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    reasons = [f["reason"] for f in report.failures] + [r["reason"] for r in report.needs_review]
    assert any("vision.md" in r for r in reasons)
    _fresh(answerer)
    assert answerer.ask(question).status != "curated"


def test_an_expired_entry_is_never_served(curated_kb: Path, tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data", curated_kb)
    path = curated_kb / "svar" / "vision.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace("reviewed: 2026-12-01", "reviewed: 2025-01-01")
    path.write_text(text.replace("expires: 2027-12-01", "expires: 2025-06-01"), encoding="utf-8")
    review(settings, [path], today=date(2025, 1, 2))
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    assert report.needs_review == [{"entry": "svar/vision.md", "reason": "expired on 2025-06-01"}]
    answerer = Answerer(settings, embedder=embedder)
    question = variant(curated_kb, "da")
    assert answerer.ask(question).status != "curated"
    # A review today renews it for its review interval, and it is served again.
    [line] = review(settings, [path])
    assert f"expires {(date.today() + (date(2025, 6, 1) - date(2025, 1, 2))).isoformat()}" in line
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    assert answerer.ask(question).status == "curated"


def test_an_unreviewed_entry_is_not_served(curated_kb: Path, tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data", curated_kb)
    path = curated_kb / "svar" / "vision.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.split("source_hashes:")[0] + "---\n" + text.split("---\n", 2)[2])
    report = ingest(settings, embedder)
    assert report.exit_code == 1
    [item] = report.needs_review
    assert "not reviewed yet" in item["reason"] and item["entry"] == "svar/vision.md"
    answerer = Answerer(settings, embedder=embedder)
    assert answerer.ask(variant(curated_kb, "da")).status != "curated"


def test_a_follow_up_is_matched_on_its_own_words_only(served) -> None:
    settings, answerer, _ = served
    first = answerer.ask(variant(settings.knowledge_dir, "da"), chat_id="c1")
    assert first.status == "curated"
    # With the previous question's words this would look like the entry; on its own it does not.
    follow_up = answerer.ask("og hvad med i Odense?", chat_id="c1")
    assert follow_up.status != "curated"


def test_curated_answers_can_be_turned_off(served, embedder) -> None:
    settings, _, _ = served
    off = Answerer(settings.model_copy(update={"curated_answers": False}), embedder=embedder)
    assert off.ask(variant(settings.knowledge_dir, "da")).status != "curated"
    # A suggestion button sent before the switch serves nothing either.
    assert off.curated_by_id("vision", "da") is None


# -- staff fix a wrong match by editing the entry's lists -----------------------------------


def _add_to_list(path: Path, key: str, question: str) -> None:
    """Add a Danish question under `questions:` or `not:` of a curated file, as staff would."""
    import yaml

    text = path.read_text(encoding="utf-8")
    front, body = text.split("---\n", 2)[1:]
    data = yaml.safe_load(front)
    data.setdefault(key, {"da": [], "en": []}).setdefault("da", []).append(question)
    dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    path.write_text(f"---\n{dumped}---\n{body}", encoding="utf-8")


def test_a_question_added_as_a_variant_is_served_word_for_word(served, embedder) -> None:
    settings, answerer, path = served
    question = "Hvor skal vi hen, du?"
    assert answerer.ask(question).status != "curated"
    _add_to_list(path, "questions", question)
    assert ingest(settings, embedder).exit_code == 0  # the sources are unchanged: no review
    _fresh(answerer)
    for asked in (question, "hvor skal vi hen du"):  # case and punctuation do not matter
        answer = answerer.ask(asked)
        assert answer.status == "curated" and answer.curated["id"] == "vision"
        assert answer.curated["score"] == 1.0 and answer.text.startswith(f"Svar på: {question}")


def test_a_declined_question_gets_the_reviewed_refusal(served, embedder, tmp_path) -> None:
    """A question on the entry's topic that the material cannot answer: the reviewed answer
    says so and where to ask, and the reply counts as a refusal (`refused` in ask --json)."""
    settings, answerer, path = served
    question = "Hvad står der ordret i visionsdokumentet?"
    _add_to_list(path, "declined", question)
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    declined = answerer.ask(question)
    assert declined.status == "curated" and declined.refused
    assert declined.curated["id"] == "vision" and declined.citations
    payload = declined.to_json()
    assert payload["refused"] is True and payload["status"] == "curated"
    # The entry's own questions are still answered, not refused.
    answered = answerer.ask(variant(settings.knowledge_dir, "da"))
    assert answered.status == "curated" and not answered.refused


def test_a_keyword_variant_is_answered_under_a_variant_written_as_a_question(served) -> None:
    _, answerer, _ = served
    answer = answerer.ask("rådets vision")  # a variant of the vision entry, word for word
    assert answer.status == "curated" and answer.curated["id"] == "vision"
    heading = answer.text.splitlines()[0]
    assert heading.startswith("Svar på: ") and heading.endswith("?"), heading


def test_a_question_listed_under_not_never_gets_that_entry(served, embedder) -> None:
    settings, answerer, path = served
    question = "Hvad er rådets vision egentlig?"
    before = answerer.ask(question)
    assert before.status == "curated" and before.curated["id"] == "vision"
    _add_to_list(path, "not", question)
    assert ingest(settings, embedder).exit_code == 0
    _fresh(answerer)
    after = answerer.ask(question)
    assert after.status != "curated" and after.suggestion is None
    # The entry's own variants are still served.
    assert answerer.ask(variant(settings.knowledge_dir, "da")).status == "curated"


# -- the command line ------------------------------------------------------------------------


def test_ingest_review_command_records_and_refreshes(
    curated_kb: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KNOWLEDGE_DIR", str(curated_kb))
    # The CLI configures the process's logging; other tests rely on pytest's.
    monkeypatch.setattr("bot.ingest.cli.setup_logging", lambda settings, stream=None: None)
    path = curated_kb / "svar" / "vision.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.split("source_hashes:")[0] + "---\n" + text.split("---\n", 2)[2])
    assert ingest_main([]) == 1
    assert "REVIEW svar/vision.md: not reviewed yet" in capsys.readouterr().out
    assert ingest_main(["--review", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Reviewed svar/vision.md: 2 source(s) recorded" in out
    assert "curated answers: 4 valid, 4 served" in out
    assert ingest_main(["--review", str(curated_kb / "vision.md")]) == 2  # not a curated answer


def test_ask_json_reports_a_curated_reply(served, tmp_path: Path) -> None:
    settings, _, _ = served
    env = {
        "DATA_DIR": str(settings.data_dir),
        "KNOWLEDGE_DIR": str(settings.knowledge_dir),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", variant(settings.knowledge_dir, "en")],
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
    assert payload["curated"]["question"] == variant(settings.knowledge_dir, "en")
    assert {c["file"] for c in payload["citations"]} == {"vision.md", "raadet-forside-2024.txt"}

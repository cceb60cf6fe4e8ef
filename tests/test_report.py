"""The gap report: numbers, grouping, the embedded chart, and nothing personal in it."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

from bot.answer.models import Answer, Citation
from bot.cli import main as cli_main
from bot.metrics import Metrics
from bot.report import build_report, render_html
from bot.telegram.feedback import FeedbackStore
from tests.conftest import KNOWLEDGE, make_settings


def _answer(
    status: str,
    refused: bool = False,
    curated: str | None = None,
    suggested: str | None = None,
    chosen: bool = False,
) -> Answer:
    answer = Answer(question="", language="da", text="", refused=refused, status=status)
    answer.citations = [Citation(1, "T", "https://x", "2024-01-01", "vision.md", "q")]
    if curated:
        answer.curated = {"id": curated, "question": "", "reviewed": "2026-12-01", "score": 0.97}
        if chosen:
            answer.curated["chosen"] = True
    if suggested:
        answer.suggestion = {"id": suggested, "question": "Hvem sidder i rådet?", "score": 0.6}
    answer.timings_ms = {"total": 12.0}
    return answer


def seed(data_dir: Path) -> None:
    metrics = Metrics(data_dir / "metrics.sqlite3")
    for _ in range(3):
        metrics.record(_answer("answered"))
    metrics.record(_answer("curated", curated="formand"))
    # Two answers offered the members entry as a button; one user pressed it.
    metrics.record(_answer("answered", suggested="medlemmer"))
    metrics.record(_answer("answered", suggested="medlemmer"))
    metrics.record(_answer("curated", curated="medlemmer", chosen=True))
    for question in (
        "Hvad koster en parkeringstilladelse?",
        "hvad koster en parkeringstilladelse",
        "Hvornår åbner svømmehallen?",
    ):
        metrics.record(_answer("not_found", refused=True), question)
    feedback = FeedbackStore(data_dir / "feedback.sqlite3")
    feedback.remember("a1", "Hvem er formand?", ["formand-gurli-martinussen.md"], "curated")
    feedback.vote("a1", positive=False)
    feedback.set_reason("a1", "w")
    feedback.remember("a2", "Hvad er visionen?", ["vision.md"], "answered")
    feedback.vote("a2", positive=True)


def test_report_counts_groups_and_lists_curated_use(tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "data")
    seed(settings.data_dir)
    report = build_report(settings, embedder, days=7)
    assert report.totals == {"questions": 10, "answered": 5, "curated": 2, "refused": 3}
    assert report.share("refused") == round(3 / 10, 3)
    assert sum(day["answered"] for day in report.per_day.values()) == 5
    assert len(report.per_day) == 7
    # The two wordings of the parking question are one topic, the biggest.
    top = report.refused_groups[0]
    assert top["count"] == 2 and "parkeringstilladelse" in top["example"].lower()
    assert report.reasons == {"wrong": 1}
    assert report.curated_hits["formand"] == 1
    assert "formand" not in report.curated_unused and "vision" in report.curated_unused
    # Suggestions below the serving threshold, and the one a user took, per entry.
    assert report.curated_suggested["medlemmer"] == 2 and report.curated_chosen["medlemmer"] == 1
    assert report.curated_hits["medlemmer"] == 1 and report.curated_chosen["formand"] == 0
    assert report.suggestions_taken() == "1 of 2 (50%)"
    assert report.needs_review == []  # the shipped entries are reviewed and fresh


def test_report_command_writes_one_self_contained_html_file(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    data = tmp_path / "data"
    seed(data)
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("KNOWLEDGE_DIR", str(KNOWLEDGE))
    # The CLI configures the process's logging; other tests rely on pytest's.
    monkeypatch.setattr("bot.cli.setup_logging", lambda settings: None)
    out = tmp_path / "rapport.html"
    assert cli_main(["report", "--days", "7", "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "10 questions" in printed and "refused 30%" in printed
    assert "Suggested reviewed answers taken: 1 of 2 (50%)" in printed
    page = out.read_text(encoding="utf-8")
    # No external resource: the chart is a PNG inside the file.
    assert not re.search(r"(src|href)=['\"]https?:", page)
    [data_uri] = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert base64.b64decode(data_uri).startswith(b"\x89PNG")
    assert "parkeringstilladelse" in page.lower() and "wrong" in page
    assert "<td>medlemmer</td><td>1</td><td>1</td><td>2</td>" in page
    assert cli_main(["report", "--days", "7", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["totals"]["curated"] == 2 and figures["reasons"] == {"wrong": 1}
    assert figures["curated_chosen"]["medlemmer"] == 1


def test_report_names_curated_entries_that_need_review(tmp_path: Path, embedder) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    source = knowledge / "vision.md"
    source.write_text(source.read_text(encoding="utf-8") + "\nNy tekst.\n", encoding="utf-8")
    settings = make_settings(tmp_path / "data", knowledge)
    report = build_report(settings, embedder, days=7)
    assert {"entry": "svar/vision.md", "reason": report.needs_review[0]["reason"]} in (
        report.needs_review
    )
    assert any("vision.md changed after the review" in r["reason"] for r in report.needs_review)
    assert "svar/vision.md" in render_html(report)

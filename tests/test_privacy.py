"""Redaction of personal data and the input guard, as units of logic."""

import pytest

from bot.answer.guard import check, clean
from bot.privacy import find_personal_data, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mit cpr er 010190-1234", "Mit cpr er [CPR]"),
        ("cpr 0101901234.", "cpr [CPR]."),
        ("ring på 12 34 56 78", "ring på [TELEFON]"),
        ("tlf. +45 12345678", "tlf. [TELEFON]"),
        ("skriv til anne@example.dk", "skriv til [EMAIL]"),
    ],
)
def test_personal_data_is_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "udpeget 2020-2024",
        "40 mio. kr.",
        "1.450 borgere",
        "den 29. april 2020",
        "13,3 mio",
        "2024-04-17T10:00:00",
        "81 unge og 300 borgere",
    ],
)
def test_facts_with_numbers_are_not_mistaken_for_personal_data(text):
    assert redact(text) == text and not find_personal_data(text)


def test_guard_strips_invisible_and_tag_characters():
    assert clean("Hej\u200b \U000e0041\U000e0042 Rådet\ufeff") == "Hej Rådet"


def test_guard_removes_personal_data_from_the_search_text():
    result = check("Mit CPR er 010190-1234, hvem er formand?", 1000)
    assert result.personal_data and result.stop is None
    assert "010190" not in result.search_text and "formand" in result.search_text


def test_feedback_and_metrics_are_purged_after_the_retention_period(tmp_path):
    import sqlite3

    from bot.answer.models import Answer
    from bot.metrics import Metrics
    from bot.telegram.feedback import FeedbackStore

    feedback = FeedbackStore(tmp_path / "feedback.sqlite3")
    feedback.remember("old", "Mit CPR er 010190-1234. Hvem er formand?", ["a.md"], "answered")
    feedback.remember("new", "Hvem er formand?", ["a.md"], "answered")
    assert feedback.vote("old", True) and feedback.vote("new", False)
    assert not feedback.vote("new", True)  # one vote per answer
    with sqlite3.connect(feedback.path) as db:
        db.execute(
            "UPDATE feedback SET created_at = '2020-01-01T00:00:00+00:00' WHERE answer_id = 'old'"
        )
    assert "010190-1234" not in feedback.export()
    assert feedback.purge(90) == 1
    assert [row["answer_id"] for row in feedback.rows()] == ["new"]

    metrics = Metrics(tmp_path / "metrics.sqlite3")
    metrics.record(Answer(question="x", language="da", text="y", timings_ms={"total": 12.0}))
    with sqlite3.connect(metrics.path) as db:
        db.execute("UPDATE answers SET at = '2020-01-01T00:00:00+00:00'")
        assert "x" not in {r[0] for r in db.execute("SELECT status FROM answers")}
    assert metrics.purge(90) == 1 and metrics.summary()["questions"] == 0

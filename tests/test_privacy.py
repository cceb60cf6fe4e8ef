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

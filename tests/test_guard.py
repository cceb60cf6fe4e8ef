"""The input guard on odd inputs: years and amounts, control characters, wrapped questions."""

from __future__ import annotations

import pytest

from bot.answer.guard import check
from bot.privacy import find_personal_data, redact


@pytest.mark.parametrize(
    "text", ["2020 2024", "Hvad skete der mellem 2020 2024?", "40000000 kr", "12 34 56 78 mio. kr."]
)
def test_years_and_amounts_are_not_phone_numbers(text):
    assert not find_personal_data(text)
    assert redact(text) == text


@pytest.mark.parametrize("text", ["Ring 12 34 56 78", "min mobil er 12345678", "+45 12 34 56 78"])
def test_phone_numbers_are_still_found_and_redacted(text):
    assert find_personal_data(text).kinds == {"phone"}
    assert "[TELEFON]" in redact(text)


@pytest.mark.parametrize(
    "text", ["\x1b[31m\x1b[0m\x07", "\x1b]0;title\x07\x1b[2J", "\x00\x01\x02\x1b[H"]
)
def test_only_terminal_control_characters_is_not_a_question(text):
    assert check(text, 1000).stop in ("empty", "noise")


@pytest.mark.parametrize(
    "wrapped",
    [
        "**Hvem er formand for Rådet?**",
        "<p>Hvem er <b>formand</b> for Rådet?</p>",
        "# Hvem er formand for Rådet?",
        "`Hvem er formand for Rådet?`",
        "> Hvem er [formand](https://example.org) for Rådet?",
        "Hvem er formand for R&aring;det?",
    ],
)
def test_markup_around_a_question_is_removed(wrapped):
    result = check(wrapped, 1000)
    assert result.stop is None
    assert result.search_text == "Hvem er formand for Rådet?"


def test_a_wrapped_question_is_answered_like_the_plain_one(answerer):
    plain = answerer.ask("Hvem er formand for Rådet?")
    wrapped = answerer.ask("<b>**Hvem er formand for Rådet?**</b>")
    assert wrapped.text == plain.text and not wrapped.refused

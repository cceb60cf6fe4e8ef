"""Quoting only the items of a list that answer the question (`compose.trim_list`)."""

from __future__ import annotations

from bot.answer.compose import Unit, compose, trim_list
from bot.retrieval import Passage

LIST = "Rådet har tre medlemmer:\n- Alfa Andersen (formand)\n- Beta Berg\n- Gamma Gram"


def unit(text: str = LIST) -> Unit:
    meta = {"doc_id": "d", "file": "d.md", "title": "D", "source_date": "2024-01-01"}
    passage = Passage("d#1", text, meta, 1.0, 0.9, 0.0)
    items = [line for line in text.split("\n") if line.startswith("- ")]
    return Unit(text, passage, 0, frozenset(), frozenset(), parts=[(i, 0.8) for i in items])


def test_the_best_item_is_quoted_under_the_lead_in_and_marked_as_an_excerpt():
    text = trim_list(unit(), [0.9, 0.2, 0.1], 0.5, 2)
    assert text == "Rådet har tre medlemmer:\n- Alfa Andersen (formand)\n…"


def test_items_close_to_the_best_are_kept_in_the_lists_order():
    text = trim_list(unit(), [0.6, 0.1, 0.9], 0.5, 2)
    assert text == "Rådet har tre medlemmer:\n- Alfa Andersen (formand)\n- Gamma Gram\n…"
    assert trim_list(unit(), [0.6, 0.7, 0.9], 0.5, 1).endswith("- Gamma Gram\n…")


def test_a_list_whose_items_all_score_alike_is_quoted_whole():
    assert trim_list(unit(), [0.8, 0.7, 0.75], 0.5, 3) == LIST


def test_no_trimming_quotes_the_list_whole_and_sentences_are_never_cut():
    assert trim_list(unit(), [0.9, 0.1, 0.1], 0.5, 0) == LIST
    sentence = Unit("En sætning.", unit().passage, 0, frozenset(), frozenset())
    assert trim_list(sentence, [], 0.5, 1) == "En sætning."


def test_the_citation_quotes_what_the_answer_shows():
    composition = compose([unit()], lambda u: trim_list(u, [0.9, 0.1, 0.1], 0.5, 1))
    assert composition.citations[0].quote.endswith("- Alfa Andersen (formand)\n…")
    assert composition.lines[0].endswith("… [1]")

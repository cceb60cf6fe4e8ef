"""`make eval`'s gate figures: the risk-coverage curve and the threshold set for a false-refusal rate.

Both read answers composed as if the gate let everything through, so an answer the shipped
threshold would refuse still counts as right or wrong by its own text.
"""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer.models import Answer
from bot.crossval import at_false_refusals, risk_coverage


def _answer(text: str, confidence: float | None, refused: bool = False) -> Answer:
    answer = Answer(question="q", language="da", text=text, refused=refused)
    if confidence is not None:  # None: stopped before the gate (the guard)
        answer.features = np.zeros(1)
        answer.evidence = {"confidence": confidence}
    return answer


ANSWERABLE = {"answerable": True, "must_contain": ["40 mio. kr."]}
UNANSWERABLE = {"answerable": False}


def _bank():
    """Ten answerable questions (confidence 0.1 … 1.0; the four least confident answered
    wrongly) and four unanswerable ones (0.05, 0.15, 0.55, 0.95)."""
    items, answers = [], []
    for n in range(1, 11):
        items.append(ANSWERABLE)
        answers.append(_answer("Fonden har 40 mio. kr." if n > 4 else "Noget andet.", n / 10))
    for confidence in (0.05, 0.15, 0.55, 0.95):
        items.append(UNANSWERABLE)
        answers.append(_answer("Et svar.", confidence))
    return items, answers


def test_the_threshold_refuses_the_asked_share_of_answerable_questions():
    items, answers = _bank()
    figures = at_false_refusals(answers, items, 0.2)
    # The two least confident answerable answers (0.1, 0.2) are refused; so are the
    # unanswerable ones below 0.3 (0.05, 0.15).
    assert figures["false_refusals"] == pytest.approx(0.2)
    assert figures["refusals"] == pytest.approx(0.5)
    assert figures["facts"] == pytest.approx(0.6)  # six right answers, none refused


def test_answers_refused_for_another_reason_count_towards_the_rate():
    items, answers = _bank()
    answers[9] = _answer("Vores kilder siger ikke noget om det.", 1.0, refused=True)
    figures = at_false_refusals(answers, items, 0.2)
    # One answerable answer is already refused, so the gate refuses only one more (0.1).
    assert figures["false_refusals"] == pytest.approx(0.2)
    assert figures["refusals"] == pytest.approx(0.5)  # 0.05 and 0.15 are below 0.2
    assert figures["facts"] == pytest.approx(0.5)


def test_at_a_rate_of_zero_no_answerable_question_is_refused():
    items, answers = _bank()
    answers.append(_answer("Ugyldigt input.", None, refused=True))
    items.append(UNANSWERABLE)
    figures = at_false_refusals(answers, items, 0.0)
    assert figures["false_refusals"] == 0.0
    # The guard's refusal, and 0.05: below the least confident answerable answer.
    assert figures["refusals"] == pytest.approx(0.4)
    assert figures["facts"] == pytest.approx(0.6)


def test_risk_falls_as_the_gate_answers_only_its_most_confident():
    items, answers = _bank()
    coverage, risk, aurc = risk_coverage(answers, items)
    assert coverage[-1] == pytest.approx(1.0)
    # 1.0 is right, 0.95 an unanswerable question answered (wrong).
    assert risk[0] == 0.0 and risk[1] == pytest.approx(0.5)
    assert risk[7] == pytest.approx(2 / 8)  # 1.0 … 0.6 plus 0.95 and 0.55 (both wrong)
    assert risk[-1] == pytest.approx(8 / 14)
    assert aurc == pytest.approx(float(np.mean(risk)))

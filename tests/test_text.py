"""Query words: weights and spelling correction per language."""

from __future__ import annotations

from itertools import product

from bot.text import Vocabulary

# A Danish vocabulary big enough to correct against (1,000 distinct words or more).
FILLER = " ".join("ord" + "".join(p) for p in product("bdfgklmnrst", repeat=3))
DANISH = FILLER + " indsatsen virker hele projektet forlade"
ENGLISH = "the project helps young people stated in the report"


def vocabulary() -> Vocabulary:
    return Vocabulary([(DANISH, "da"), (ENGLISH, "en")])


def test_an_english_word_is_not_corrected_into_a_danish_one():
    words = vocabulary()
    # "help" is one edit from Danish "hele"; English has too few words to correct against.
    assert words.correct("helpx", language="en") is None
    assert words.corrected("How does the project help?", "en").endswith("help?")


def test_danish_spelling_is_corrected_against_danish_words():
    assert vocabulary().correct("projektett", language="da") == "projektet"


def test_a_corrected_word_weighs_less_than_a_known_one_and_names_share_a_weight():
    weights = dict(vocabulary().query_terms("Virker projektett for Jens Peter Hansen?", "da"))
    assert weights["virk"] == 1.0
    assert weights["projek"] == 0.8  # corrected from "projektett" to "projektet"
    assert abs(sum(weights[t] for t in ("jen", "pet", "hans")) - 1.0) < 1e-9

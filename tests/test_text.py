"""Query words: weights, spelling correction per language, Danish verb forms."""

from __future__ import annotations

from itertools import product

from bot.text import Vocabulary, danish_lemma

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


def test_an_unknown_verb_after_the_question_word_weighs_half():
    weights = dict(vocabulary().query_terms("Hvad sker der hvis indsatsen ikke virker?", "da"))
    topic = dict(vocabulary().query_terms("Hvad koster indsatsen?", "da"))
    assert weights["sker"] == 0.5
    assert topic["kost"] == 0.5  # a verb the material lacks
    known = dict(vocabulary().query_terms("Hvad virker indsatsen?", "da"))
    assert known["virk"] == 1.0  # a known verb keeps its weight


def test_strong_past_tenses_map_to_their_infinitive():
    assert danish_lemma("forlod") == "forlade"
    assert danish_lemma("overtog") == "overtage"
    assert danish_lemma("blod") is None  # "b" is no verb prefix
    assert dict(vocabulary().query_terms("Hvorfor forlod han Rådet?", "da"))["forlad"] == 1.0

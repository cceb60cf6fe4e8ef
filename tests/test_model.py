"""The fitted parameters: they load, round-trip, and apply with numpy alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.answer.features import ITEM_FEATURES
from bot.answer.model import Intent, Logistic, Params, intent_of
from bot.errors import ConfigError


def test_the_shipped_parameters_round_trip_with_every_fitted_part():
    params = Params.load()
    assert params.intent is not None and params.items is not None
    assert params.items.names == ITEM_FEATURES
    again = Params.from_dict(json.loads(params.dumps()))
    assert again.dumps() == params.dumps()


def test_intent_reads_the_question_vector_and_is_neutral_without_one():
    # One principal direction (the first axis); the model weighs its square only, so questions
    # at either end of that direction count as answerable and those across it do not, which no
    # linear model of the vector can express.
    model = Logistic(("e0", "e1", "q0_0"), np.zeros(3), np.ones(3), np.array([0.0, 0.0, 8.0]), -4.0)
    intent = Intent(np.zeros(2), np.array([[1.0, 0.0]]), model)
    assert intent_of(intent, np.array([1.0, 0.0])) > 0.9
    assert intent_of(intent, np.array([-1.0, 0.0])) > 0.9
    assert intent_of(intent, np.array([0.0, 1.0])) < 0.1
    assert intent_of(intent, np.array([0.0, 2.0])) < 0.1  # the vector is made unit length
    # Another embedder (another dimension) or no vector: no opinion, until `make train`.
    assert intent_of(intent, np.array([1.0, 0.0, 0.0])) == 0.5
    assert intent_of(intent, None) == 0.5 and intent_of(None, np.array([1.0, 0.0])) == 0.5


def test_intent_counts_only_where_the_best_unit_is_from_a_document_the_bank_knows():
    # After staff add or change a document, the questions the bank found unanswered may be
    # answered by it: the gate then reads the intent feature at its training mean (no push).
    shipped = Params.load()
    assert shipped.fitted_on, "make train records the document versions it was fitted on"
    known = next(iter(shipped.fitted_on)) + "0" * 48  # a full doc_hash with that prefix
    vector = np.ones(shipped.intent.dimension, dtype=np.float32)
    assert shipped.intent_for(vector, known) == intent_of(shipped.intent, vector)
    neutral = shipped.intent_for(vector, "f" * 64)
    index = shipped.gate.names.index("intent")
    assert np.log(neutral / (1 - neutral)) == pytest.approx(shipped.gate.mean[index])
    # In training (fitted_on None) every document counts as known.
    training = Params(shipped.ranker, shipped.gate, shipped.intent)
    assert training.intent_for(vector, "f" * 64) == intent_of(shipped.intent, vector)


def test_parameters_fitted_on_other_features_are_refused(tmp_path):
    data = json.loads(Params.load().dumps())
    data["items"]["features"] = ["dense"]
    path = tmp_path / "params.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="make train"):
        Params.load(path)

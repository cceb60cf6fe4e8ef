"""The fitted parameters: they load, round-trip, and apply with numpy alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.answer.features import ITEM_FEATURES
from bot.answer.model import Logistic, Params, intent_of
from bot.errors import ConfigError


def logistic(names, coef) -> Logistic:
    n = len(names)
    return Logistic(tuple(names), np.zeros(n), np.ones(n), np.asarray(coef, float), 0.0)


def test_the_shipped_parameters_round_trip_with_every_fitted_part():
    params = Params.load()
    assert params.intent is not None and params.items is not None
    assert params.items.names == ITEM_FEATURES
    again = Params.from_dict(json.loads(params.dumps()))
    assert again.dumps() == params.dumps()


def test_intent_reads_the_question_vector_and_is_neutral_without_one():
    intent = logistic(["e0", "e1"], [4.0, -4.0])
    assert intent_of(intent, np.array([1.0, 0.0])) > 0.9
    assert intent_of(intent, np.array([0.0, 1.0])) < 0.1
    # Another embedder (another dimension) or no vector: no opinion, until `make train`.
    assert intent_of(intent, np.array([1.0, 0.0, 0.0])) == 0.5
    assert intent_of(intent, None) == 0.5 and intent_of(None, np.array([1.0, 0.0])) == 0.5


def test_parameters_fitted_on_other_features_are_refused(tmp_path):
    data = json.loads(Params.load().dumps())
    data["items"]["features"] = ["dense"]
    path = tmp_path / "params.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="make train"):
        Params.load(path)

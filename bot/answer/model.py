"""The fitted parts, applied with numpy: the unit ranker and the refusal gate.

`make train` (`bot.train`) fits both on the question bank and writes `params.json` beside this
module. Both are logistic regressions over standardised features (`bot.answer.features`):

    p = 1 / (1 + exp(-(((x - mean) / scale) · coef + intercept)))

The intent model (`Intent`) is a logistic regression of the same form over a question's
embedding and the pairwise products of its leading principal components.

The file also holds what the training chose by grouped cross-validation: the fusion method and
weight, the pool size, how close a runner-up must score to be quoted, which items of a list are
quoted (`compose.trim_list`), and the gate's threshold
(set on a calibration split of documents that the fitting never saw).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.errors import ConfigError

PARAMS_FILE = Path(__file__).with_name("params.json")
HASH_PREFIX = 16  # hex digits of a document's `doc_hash` kept in `Params.fitted_on`


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic regression over named features."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """P(positive) for each row of features (in `names` order)."""
        if rows.size == 0:
            return np.zeros(len(rows))
        z = ((rows - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def to_dict(self) -> dict:
        return {
            "features": list(self.names),
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "coef": _rounded(self.coef),
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_dict(cls, data: dict, expected: tuple[str, ...]) -> Logistic:
        names = tuple(data["features"])
        if names != expected:
            raise ConfigError(
                f"The answer parameters were fitted on other features ({len(names)} named); "
                "run `make train` to refit them."
            )
        return cls(
            names,
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
        )


@dataclass(frozen=True)
class Intent:
    """P(the material answers it) from a question's embedding alone.

    A logistic regression on the unit-length embedding and on the pairwise products of its
    leading principal components: quadratic in a small subspace (how a personal case or another
    municipality is asked is not one direction of the embedding), yet convex to fit, so that
    `make train` reproduces it.
    """

    centre: np.ndarray  # the training questions' mean embedding
    components: np.ndarray  # (k, dimension): leading principal directions
    model: Logistic  # over the embedding, then z_i * z_j for i <= j (z: the projections)

    @property
    def dimension(self) -> int:
        return int(self.components.shape[1])

    def expand(self, rows: np.ndarray) -> np.ndarray:
        """The model's inputs for unit-length embeddings (one per row)."""
        z = (rows - self.centre) @ self.components.T
        i, j = np.triu_indices(z.shape[1])
        return np.hstack([rows, z[:, i] * z[:, j]])

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return self.model.probability(self.expand(rows))

    def to_dict(self) -> dict:
        return {
            "centre": _rounded(self.centre),
            "components": [_rounded(row) for row in self.components],
            "model": self.model.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Intent:
        components = np.asarray(data["components"], dtype=np.float64)
        names = intent_features(components.shape[1], components.shape[0])
        return cls(
            np.asarray(data["centre"], dtype=np.float64),
            components,
            Logistic.from_dict(data["model"], names),
        )


def intent_features(dimension: int, components: int) -> tuple[str, ...]:
    """Names of the intent model's inputs: e0 … (the embedding), then q{i}_{j} (products)."""
    i, j = np.triu_indices(components)
    return tuple(f"e{n}" for n in range(dimension)) + tuple(
        f"q{a}_{b}" for a, b in zip(i.tolist(), j.tolist(), strict=True)
    )


@dataclass(frozen=True)
class Params:
    """Everything `make train` fits or chooses."""

    ranker: Logistic
    gate: Logistic
    intent: Intent | None = None  # P(answerable) from the question's embedding
    items: Logistic | None = None  # which items of a whole list answer (ITEM_FEATURES)
    threshold: float = 0.5  # answer when the gate's p(correct) reaches this
    add_share: float = 0.6  # a runner-up is quoted from this share of the best unit's score
    max_units: int = 3
    list_trim: tuple[float, int] = (0.0, 0)  # a whole list's items quoted: (share, at most)
    fusion: tuple[str, float] = ("cc", 0.5)
    pool_size: int = 24
    # Subtracted from an English question's vector before dense retrieval: the mean English
    # question minus the mean Danish one, scaled (see `bot.train.fit_language_shift`).
    language_shift: np.ndarray | None = field(default=None, compare=False)
    # The versions of the documents the bank was answered from (`doc_hash` prefixes); None in
    # training, where every document is one the bank knows. See `intent_for`.
    fitted_on: frozenset[str] | None = field(default=None, compare=False)
    report: dict = field(default_factory=dict, compare=False)

    def shift_for(self, language: str) -> np.ndarray | None:
        """What to take off a question's vector before retrieval (English questions only)."""
        return self.language_shift if language == "en" else None

    def knows(self, doc_hash: str) -> bool:
        """Whether the bank was answered from this document version when these were fitted."""
        return self.fitted_on is None or doc_hash[:HASH_PREFIX] in self.fitted_on

    def intent_for(self, vector: np.ndarray | None, doc_hash: str) -> float:
        """The intent model's P(answerable), where the answer rests on a document it knows.

        The intent model learnt from the bank which questions the material at training time
        does not answer. A document added or changed since may answer exactly those, so when
        the best unit comes from a document version the bank never saw, the gate gets the
        value at which the intent feature adds nothing (its training mean) instead.
        """
        if self.knows(doc_hash):
            return intent_of(self.intent, vector)
        index = self.gate.names.index("intent")
        return float(1.0 / (1.0 + np.exp(-self.gate.mean[index])))

    def to_dict(self) -> dict:
        return {
            "ranker": self.ranker.to_dict(),
            "gate": self.gate.to_dict(),
            "intent": self.intent.to_dict() if self.intent else None,
            "items": self.items.to_dict() if self.items else None,
            "threshold": round(self.threshold, 6),
            "add_share": self.add_share,
            "max_units": self.max_units,
            "list_trim": {"share": self.list_trim[0], "max_items": self.list_trim[1]},
            "fusion": {"method": self.fusion[0], "dense_weight": self.fusion[1]},
            "pool_size": self.pool_size,
            "language_shift": (
                _rounded(self.language_shift) if self.language_shift is not None else None
            ),
            "fitted_on": sorted(self.fitted_on) if self.fitted_on is not None else None,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Params:
        from bot.answer.features import ANSWER_FEATURES, ITEM_FEATURES, UNIT_FEATURES

        return cls(
            ranker=Logistic.from_dict(data["ranker"], UNIT_FEATURES),
            gate=Logistic.from_dict(data["gate"], ANSWER_FEATURES),
            intent=Intent.from_dict(data["intent"]) if data.get("intent") else None,
            items=Logistic.from_dict(data["items"], ITEM_FEATURES) if data.get("items") else None,
            threshold=float(data["threshold"]),
            add_share=float(data["add_share"]),
            max_units=int(data["max_units"]),
            list_trim=(float(data["list_trim"]["share"]), int(data["list_trim"]["max_items"])),
            fusion=(data["fusion"]["method"], float(data["fusion"]["dense_weight"])),
            pool_size=int(data["pool_size"]),
            language_shift=(
                np.asarray(data["language_shift"], dtype=np.float32)
                if data.get("language_shift")
                else None
            ),
            fitted_on=(frozenset(data["fitted_on"]) if data.get("fitted_on") is not None else None),
            report=data.get("report", {}),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Params:
        path = path or PARAMS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"No answer parameters at {path}; run `make train`.") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"The answer parameters at {path} are not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"The answer parameters at {path} are incomplete: {exc}") from exc

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def intent_of(intent: Intent | None, vector: np.ndarray | None) -> float:
    """P(answerable) from the question's embedding; 0.5 without a model or a vector to fit."""
    if intent is None or vector is None or len(vector) != intent.dimension:
        return 0.5
    unit = vector / (np.linalg.norm(vector) or 1.0)
    return float(intent.probability(unit[None, :].astype(np.float64))[0])


def prior(names: tuple[str, ...], weights: dict[str, float], intercept: float = 0.0) -> Logistic:
    """An unfitted model from a few weights (used only to bootstrap the first training run)."""
    coef = np.array([weights.get(n, 0.0) for n in names], dtype=np.float64)
    return Logistic(names, np.zeros(len(names)), np.ones(len(names)), coef, intercept)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]

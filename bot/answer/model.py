"""The fitted parts, applied with numpy: the unit ranker and the refusal gate.

`make train` (`bot.train`) fits both on the question bank and writes `params.json` beside this
module. Both are logistic regressions over standardised features (`bot.answer.features`):

    p = 1 / (1 + exp(-(((x - mean) / scale) · coef + intercept)))

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
class Params:
    """Everything `make train` fits or chooses."""

    ranker: Logistic
    gate: Logistic
    intent: Logistic | None = None  # P(answerable) from the question's embedding (e0 … e383)
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
    report: dict = field(default_factory=dict, compare=False)

    def shift_for(self, language: str) -> np.ndarray | None:
        """What to take off a question's vector before retrieval (English questions only)."""
        return self.language_shift if language == "en" else None

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
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Params:
        from bot.answer.features import ANSWER_FEATURES, ITEM_FEATURES, UNIT_FEATURES

        return cls(
            ranker=Logistic.from_dict(data["ranker"], UNIT_FEATURES),
            gate=Logistic.from_dict(data["gate"], ANSWER_FEATURES),
            intent=(
                Logistic.from_dict(data["intent"], tuple(data["intent"]["features"]))
                if data.get("intent")
                else None
            ),
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


def intent_of(intent: Logistic | None, vector: np.ndarray | None) -> float:
    """P(answerable) from the question's embedding; 0.5 without a model or a vector to fit."""
    if intent is None or vector is None or len(vector) != len(intent.names):
        return 0.5
    unit = vector / (np.linalg.norm(vector) or 1.0)
    return float(intent.probability(unit[None, :].astype(np.float64))[0])


def prior(names: tuple[str, ...], weights: dict[str, float], intercept: float = 0.0) -> Logistic:
    """An unfitted model from a few weights (used only to bootstrap the first training run)."""
    coef = np.array([weights.get(n, 0.0) for n in names], dtype=np.float64)
    return Logistic(names, np.zeros(len(names)), np.ones(len(names)), coef, intercept)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]

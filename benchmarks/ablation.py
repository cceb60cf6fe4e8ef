"""Out-of-fold worth of each remaining hand rule: switch one off, refit, compare.

    python -m benchmarks.ablation [VARIANT ...]

Each variant turns one rule off in this process, prepares the question bank again and runs
the same document-grouped cross-validation as `make train` (`bot.train.cross_validate`).
A rule stays only while it pays; the README's ablation table comes from here (the rules
removed in 2026-12 were measured the same way before they went).
"""

from __future__ import annotations

import json
import sys

import bot.answer.compose as compose
import bot.text as text
import bot.train as train
from bot.answer.core import Answerer
from bot.answer.model import Params
from bot.config import Settings
from bot.train import (
    bootstrap_params,
    cache_every_query,
    cross_validate,
    load_bank,
    prepare_all,
    score,
)


def _library_stopwords() -> None:
    from bm25s.stopwords import STOPWORDS_DANISH, STOPWORDS_EN

    library = frozenset(STOPWORDS_DANISH) | frozenset(STOPWORDS_EN)
    text.stopwords = lambda: library


VARIANTS = {
    "shipped": lambda: None,
    "no-spelling": lambda: setattr(text.Vocabulary, "correct", lambda self, *a, **k: None),
    "library-stopwords": _library_stopwords,
    "no-absence": lambda: setattr(compose, "is_absence", lambda _text, section="": False),
    # Fitted parts, switched off the same way, to show what each one earns out of fold.
    "no-intent": lambda: setattr(train, "fit_intent", lambda examples: None),
    "whole-lists": lambda: setattr(train, "LIST_TRIMS", ((0.0, 0),)),
}


def run(variant: str) -> dict:
    VARIANTS[variant]()
    answerer = Answerer(Settings(), params=bootstrap_params())
    cache_every_query(answerer)
    answerer.warm_up()
    fusion = Params.load().fusion
    examples = prepare_all(answerer, load_bank(), fusion)
    return score(examples, cross_validate(answerer, examples, fusion))


def main(argv: list[str] | None = None) -> int:
    import subprocess

    names = (argv if argv is not None else sys.argv[1:]) or list(VARIANTS)
    if len(names) == 1:
        print(json.dumps({names[0]: run(names[0])}), flush=True)
        return 0
    # One process per variant: a switched-off rule must not leak into the next run.
    for name in names:
        subprocess.run([sys.executable, "-m", "benchmarks.ablation", name], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

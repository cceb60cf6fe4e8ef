"""`make eval`: every question set and both baselines side by side, in one run.

    python -m bot.crossval [--png eval/risk_coverage.png] [--json FILE]

Columns: the public set and the team's dev set (answered with the shipped parameters), the
question bank out-of-fold (each document's questions answered by parts fitted without them,
`bot.train.cross_validate`), and on the bank two baselines:
- top-k dense: quote the k units most similar to the question, never refuse, with k chosen
  so that its answers are as long as ours on average (and k = 4, the naive baseline);
- LlamaIndex starter: `VectorStoreIndex.from_documents` with its default splitter and
  `as_retriever()` (top 2), quoting the retrieved nodes, never refusing.
The product answers with curated answers first (knowledge/svar/); the same sets without them
(CURATED_ANSWERS=false) show the rest of the pipeline on its own.
Rows: all questions, per language and per kind. The gate's risk-coverage curve on the bank's
out-of-fold answers is written as a PNG, and the bank's figures are also given with the gate's
threshold moved to refuse 3, 5 and 8 % of the answerable questions, so that two versions can
be compared without the threshold's own spread.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.answer.core import Answerer
from bot.answer.models import Answer
from bot.config import Settings
from bot.evaluate import evaluate, judge, load_questions, summarise
from bot.train import (
    EVAL_DIR,
    Example,
    answer_all,
    cache_every_query,
    fold_params,
    load_bank,
    prepare_all,
)

log = logging.getLogger(__name__)

FALSE_REFUSAL_RATES = (0.03, 0.05, 0.08)

FIGURES = ("fact_accuracy", "refusal_accuracy", "false_refusals", "words_mean")
SHORT = {
    "fact_accuracy": "facts",
    "refusal_accuracy": "refuse",
    "false_refusals": "false",
    "words_mean": "words",
}


def quoted(item: dict, question: str, texts: Sequence[str], files: Sequence[str]) -> Answer:
    """A baseline's answer: the texts quoted in order, never a refusal."""
    answer = Answer(question=question, language=item.get("language", "da"), text="\n".join(texts))
    answer.top_files = list(dict.fromkeys(files))
    return answer


def top_dense(examples: Sequence[Example], k: int) -> list[Answer]:
    out = []
    for e in examples:
        units = sorted(e.prepared.units, key=lambda u: -u.passage.dense)[:k]
        out.append(
            quoted(
                e.item,
                e.item["question"],
                [u.text for u in units],
                [u.passage.metadata.get("file", "") for u in units],
            )
        )
    return out


def llamaindex_starter(settings: Settings, embedder, items: Sequence[dict]) -> list[Answer]:
    """The LlamaIndex starter example over the same documents and the same embedding model."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core import Settings as LlamaSettings

    from bot.ingest.loaders import discover, load_document, read_manifest
    from bot.llama_adapter import LlamaIndexEmbedding

    LlamaSettings.llm = None
    LlamaSettings.embed_model = LlamaIndexEmbedding(embedder)
    manifest = read_manifest(settings.knowledge_dir)
    files, _ = discover([settings.knowledge_dir], settings.knowledge_dir)
    documents = []
    for path in files:
        doc = load_document(path, settings.knowledge_dir, manifest)
        documents.append(
            Document(text=doc.text, metadata={"file": doc.metadata.get("file", path.name)})
        )
    retriever = VectorStoreIndex.from_documents(documents).as_retriever()
    out = []
    for item in items:
        nodes = retriever.retrieve(item["question"])
        out.append(
            quoted(
                item,
                item["question"],
                [n.node.get_content() for n in nodes],
                [n.node.metadata.get("file", "") for n in nodes],
            )
        )
    return out


def risk_coverage(
    ungated: Sequence[Answer], items: Sequence[dict]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Coverage and risk as the gate's threshold falls, and the area under the curve (AURC).

    `ungated` are the answers composed as if the gate let everything through, so that an
    answer the shipped threshold refuses still counts as right or wrong by its own text.
    """
    pairs = [
        (a.evidence.get("confidence", 0.0), bool(judge(item, a).facts_ok))
        for a, item in zip(ungated, items, strict=True)
        if a.features is not None
    ]
    pairs.sort(key=lambda p: -p[0])
    right = np.array([r for _, r in pairs], dtype=float)
    n = np.arange(1, len(right) + 1)
    coverage = n / len(right)
    risk = 1.0 - np.cumsum(right) / n
    return coverage, risk, float(np.mean(risk))


def at_false_refusals(
    ungated: Sequence[Answer], items: Sequence[dict], rate: float
) -> dict[str, float]:
    """The figures with the gate's threshold set to refuse `rate` of the answerable questions.

    Answers refused for another reason (the guard, an absence note quoted first) stay refused
    and count towards the rate; the gate refuses the least confident of the rest, at the
    highest threshold that refuses no more answerable questions than that.
    """
    answerable = np.array([item.get("answerable", True) for item in items], dtype=bool)
    refused = np.array([a.refused for a in ungated], dtype=bool)
    gated = np.array([a.features is not None for a in ungated], dtype=bool) & ~refused
    confidence = np.array(
        [
            a.evidence.get("confidence", 0.0) if g else np.inf
            for a, g in zip(ungated, gated, strict=True)
        ]
    )
    budget = max(0, round(rate * answerable.sum()) - int(refused[answerable].sum()))
    candidates = np.sort(confidence[answerable & gated])
    threshold = candidates[budget] if budget < len(candidates) else np.inf
    refused |= gated & (confidence < threshold)
    right = np.array(
        [bool(judge(item, a).facts_ok) for item, a in zip(items, ungated, strict=True)]
    )
    return {
        "facts": round(float(np.mean((right & ~refused)[answerable])), 3),
        "refusals": round(float(np.mean(refused[~answerable])), 3) if (~answerable).any() else 0.0,
        "false_refusals": round(float(np.mean(refused[answerable])), 3),
    }


def write_png(
    path: Path, coverage: np.ndarray, risk: np.ndarray, aurc: float, answered: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(coverage, risk, label=f"refusal gate (AURC {aurc:.3f})")
    ax.axvline(
        answered, linestyle="--", color="grey", label=f"shipped threshold ({answered:.0%} answered)"
    )
    ax.set_xlabel("coverage (share of questions answered)")
    ax.set_ylabel("risk (share of answers that are wrong)")
    ax.set_title("Question bank, out-of-fold")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def table(columns: dict[str, dict]) -> str:
    groups = list(dict.fromkeys(g for summary in columns.values() for g in summary))
    groups.sort(key=lambda g: (g != "all", not g.startswith("language"), g))
    head = f"{'group':<28}" + "".join(f"{name:>26}" for name in columns)
    sub = " " * 28 + "".join(f"{' '.join(f'{SHORT[f]:>6}' for f in FIGURES):>26}" for _ in columns)
    lines = [head, sub, "-" * len(head)]
    for group in groups:
        if group.startswith("persona="):
            continue
        cells = []
        for summary in columns.values():
            m = summary.get(group)
            if not m:
                cells.append(f"{'':>26}")
                continue
            values = " ".join(f"{'-' if m[f] is None else m[f]:>6}" for f in FIGURES)
            cells.append(f"{values:>26}")
        n = max((s.get(group, {}).get("n", 0) for s in columns.values()), default=0)
        lines.append(f"{f'{group} ({n})':<28}" + "".join(cells))
    return "\n".join(lines)


def run(settings: Settings, png: Path | None, as_json: Path | None) -> int:
    answerer = Answerer.started(settings)
    cache_every_query(answerer)
    columns: dict[str, dict] = {}
    curated = answerer.curated_params
    for name, path in (("public", EVAL_DIR / "questions.jsonl"), ("dev", EVAL_DIR / "dev.jsonl")):
        items = load_questions(path)
        columns[name] = summarise(evaluate(answerer, items))
        if name == "public" and curated is not None:
            answerer.curated_params = None
            columns["public, no curated"] = summarise(evaluate(answerer, items))
            answerer.curated_params = curated
    items = load_bank()
    examples = prepare_all(answerer, items, answerer.params.fusion)
    each = fold_params(answerer, examples, answerer.params.fusion)
    oof = answer_all(answerer, examples, each)
    ungated = answer_all(answerer, examples, [replace(p, threshold=-1.0) for p in each])
    served = [answerer.curated_answer(e.item["question"]) for e in examples]
    with_curated = [c or a for c, a in zip(served, oof, strict=True)]
    columns["bank OOF"] = summarise(
        [judge(e.item, a) for e, a in zip(examples, with_curated, strict=True)]
    )
    columns["bank OOF, no curated"] = summarise(
        [judge(e.item, a) for e, a in zip(examples, oof, strict=True)]
    )
    ours = columns["bank OOF"]["all"]["words_mean"] or 0.0
    by_k = {k: top_dense(examples, k) for k in range(1, 7)}
    mean_words = {k: np.mean([len(a.text.split()) for a in answers]) for k, answers in by_k.items()}
    k = min(mean_words, key=lambda k: abs(mean_words[k] - ours))
    for name, answers in ((f"top-{k} dense", by_k[k]), ("top-4 dense", by_k[4])):
        columns[name] = summarise(
            [judge(e.item, a) for e, a in zip(examples, answers, strict=True)]
        )
    starter = llamaindex_starter(settings, answerer.embedder.inner, items)
    columns["LlamaIndex starter"] = summarise(
        [judge(item, a) for item, a in zip(items, starter, strict=True)]
    )
    print(table(columns))
    coverage, risk, aurc = risk_coverage(ungated, items)
    answered = float(np.mean([not a.refused for a in oof if a.features is not None]))
    print(f"\nRefusal gate, bank out-of-fold: AURC {aurc:.3f}; answered {answered:.0%}")
    fixed = {f"{rate:.0%}": at_false_refusals(ungated, items, rate) for rate in FALSE_REFUSAL_RATES}
    columns["bank OOF, no curated, at fixed false refusals"] = fixed
    print(
        "Bank out-of-fold, no curated, the threshold set for a share of false refusals: "
        + "; ".join(
            f"{rate}: facts {f['facts']}, refusals {f['refusals']} ({f['false_refusals']})"
            for rate, f in fixed.items()
        )
    )
    hits = [c is not None for c in served]
    print(f"Curated answers served for {sum(hits)} of {len(hits)} bank questions")
    if png:
        write_png(png, coverage, risk, aurc, answered)
        print(f"Risk-coverage curve: {png}")
    if as_json:
        as_json.write_text(json.dumps(columns, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.crossval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--png", type=Path, default=EVAL_DIR / "risk_coverage.png")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return run(Settings(), args.png, args.json)


if __name__ == "__main__":
    raise SystemExit(main())

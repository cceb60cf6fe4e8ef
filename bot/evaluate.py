"""Evaluation over a question file (DESIGN section 6): hit@k, facts, refusals, citations, latency.

Question file: one JSON object per line with `question`, `language`, `answerable`,
`must_contain`, `sources`, optionally `persona`, `id`, and for follow-ups `previous` (a question
or a list asked first in the same chat; a note "Forudgående spørgsmål: '...'" is read too).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bot.answer.core import Answerer
from bot.answer.models import Answer
from bot.config import Settings

_MARKER = re.compile(r"\[(\d+)\]")
_PREVIOUS_NOTE = re.compile(
    r"(?:Forudgående spørgsmål|Previous question)\s*:\s*['\"‘“](.+?)['\"’”](?:\s|$)"
)


@dataclass
class Result:
    """One question's outcome."""

    item: dict
    answer: Answer
    hit_at_3: bool | None
    facts_ok: bool | None
    missing: list[str]
    refusal_ok: bool | None
    citations_ok: bool

    @property
    def passed(self) -> bool:
        checks = [self.hit_at_3, self.facts_ok, self.refusal_ok, self.citations_ok]
        return all(c is not False for c in checks)


@dataclass
class Metrics:
    """Aggregates over a group of results."""

    n: int = 0
    hit_at_3: list[bool] = field(default_factory=list)
    facts: list[bool] = field(default_factory=list)
    refusals: list[bool] = field(default_factory=list)
    false_refusals: list[bool] = field(default_factory=list)
    citations: list[bool] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    words: list[int] = field(default_factory=list)  # answer text of answers given

    def add(self, r: Result) -> None:
        self.n += 1
        if r.hit_at_3 is not None:
            self.hit_at_3.append(r.hit_at_3)
        if r.facts_ok is not None:
            self.facts.append(r.facts_ok)
        if r.item.get("answerable", True):
            self.false_refusals.append(r.answer.refused)
        else:
            self.refusals.append(bool(r.refusal_ok))
        self.citations.append(r.citations_ok)
        self.latency.append(r.answer.timings_ms.get("total", 0.0))
        if not r.answer.refused:
            self.words.append(len(r.answer.text.split()))

    def as_dict(self) -> dict:
        def rate(values: list[bool]) -> float | None:
            return round(sum(values) / len(values), 3) if values else None

        lat = sorted(self.latency)
        return {
            "n": self.n,
            "source_hit@3": rate(self.hit_at_3),
            "fact_accuracy": rate(self.facts),
            "refusal_accuracy": rate(self.refusals),
            "false_refusals": rate(self.false_refusals),
            "citation_validity": rate(self.citations),
            "latency_p50_ms": round(_percentile(lat, 50), 1) if lat else None,
            "latency_p95_ms": round(_percentile(lat, 95), 1) if lat else None,
            "words_mean": round(statistics.mean(self.words), 1) if self.words else None,
            "words_p90": round(_percentile(sorted(self.words), 90), 1) if self.words else None,
        }


def _percentile(values: list[float], pct: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def normalise(text: str) -> str:
    """Lower-case and collapse whitespace for fact matching."""
    return re.sub(r"\s+", " ", text).strip().lower()


def load_questions(path: Path) -> list[dict]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            item = json.loads(line)
            item.setdefault("id", f"q{number:03d}")
            items.append(item)
    return items


def previous_questions(item: dict) -> list[str]:
    """Questions to ask first in the same chat (follow-up items)."""
    previous = item.get("previous") or item.get("context")
    if isinstance(previous, str):
        return [previous]
    if isinstance(previous, list):
        return [str(p) for p in previous]
    match = _PREVIOUS_NOTE.search(item.get("note", ""))
    return [match.group(1)] if match else []


def citation_valid(answer: Answer) -> bool:
    """Every [n] resolves to a listed source and every listed source is cited and retrieved."""
    used = {int(n) for n in _MARKER.findall(answer.text)}
    listed = {c.n for c in answer.citations}
    retrieved = set(answer.top_files)
    return used == listed and all(c.file in retrieved for c in answer.citations)


def judge(item: dict, answer: Answer) -> Result:
    """Score one answer against its item."""
    answerable = item.get("answerable", True)
    cited = [c.file for c in answer.citations]
    ranked = cited + [f for f in answer.top_files if f not in cited]
    expected = set(item.get("sources") or [])
    hit = bool(expected & set(ranked[:3])) if (answerable and expected) else None
    missing: list[str] = []
    facts_ok = None
    if answerable:
        text = normalise(answer.text)
        missing = [m for m in item.get("must_contain", []) if normalise(m) not in text]
        facts_ok = not missing and not answer.refused
    refusal_ok = answer.refused if not answerable else None
    return Result(item, answer, hit, facts_ok, missing, refusal_ok, citation_valid(answer))


def evaluate(answerer: Answerer, items: list[dict], use_llm: bool = False) -> list[Result]:
    """Ask every question (follow-ups in their own chat, after their previous questions)."""
    results = []
    for item in items:
        chat = f"eval-{item['id']}"
        for earlier in previous_questions(item):
            answerer.ask(earlier, chat_id=chat, use_llm=use_llm)
        answer = answerer.ask(item["question"], chat_id=chat, use_llm=use_llm)
        results.append(judge(item, answer))
        answerer.forget(chat)
    return results


def summarise(results: list[Result]) -> dict:
    """Metrics overall, per language, per persona and per kind of question."""
    groups: dict[str, Metrics] = defaultdict(Metrics)
    for r in results:
        groups["all"].add(r)
        groups[f"language={r.item.get('language', '?')}"].add(r)
        groups[f"persona={r.item.get('persona', '?')}"].add(r)
        if r.item.get("kind"):
            groups[f"kind={r.item['kind']}"].add(r)
        if not r.item.get("answerable", True):
            groups["unanswerable"].add(r)
    return {name: m.as_dict() for name, m in sorted(groups.items())}


def failures(results: list[Result]) -> list[dict]:
    out = []
    for r in results:
        if r.passed:
            continue
        reasons = []
        if r.hit_at_3 is False:
            reasons.append(
                f"expected source not in top 3 (got {[c.file for c in r.answer.citations] or r.answer.top_files[:3]})"
            )
        if r.facts_ok is False:
            reasons.append("refused" if r.answer.refused else f"missing {r.missing}")
        if r.refusal_ok is False:
            reasons.append("answered an unanswerable question")
        if not r.citations_ok:
            reasons.append("invalid citations")
        out.append({"id": r.item["id"], "question": r.item["question"], "reasons": reasons})
    return out


def format_table(summary: dict) -> str:
    columns = [
        "n",
        "source_hit@3",
        "fact_accuracy",
        "refusal_accuracy",
        "false_refusals",
        "citation_validity",
        "latency_p50_ms",
        "latency_p95_ms",
        "words_mean",
    ]
    head = f"{'group':<24}" + "".join(f"{c:>18}" for c in columns)
    lines = [head, "-" * len(head)]
    for group, metrics in summary.items():
        cells = "".join(f"{'-' if metrics[c] is None else metrics[c]:>18}" for c in columns)
        lines.append(f"{group:<24}{cells}")
    return "\n".join(lines)


def run_eval_cli(settings: Settings, file: str, as_json: bool = False) -> int:
    """`python -m bot eval FILE [--json]`; with an LLM configured, both modes side by side."""
    answerer = Answerer.started(settings)
    items = load_questions(Path(file))
    modes = {"extractive": evaluate(answerer, items, use_llm=False)}
    if answerer.llm.enabled:
        modes["llm"] = evaluate(answerer, items, use_llm=True)
    if as_json:
        payload = {}
        for mode, results in modes.items():
            payload[mode] = {
                "summary": summarise(results),
                "failures": failures(results),
                "questions": [
                    {
                        "id": r.item["id"],
                        "passed": r.passed,
                        "refused": r.answer.refused,
                        "status": r.answer.status,
                        "generated": r.answer.generated,
                        "evidence": r.answer.evidence,
                        "cited": [c.file for c in r.answer.citations],
                        "missing": r.missing,
                    }
                    for r in results
                ],
            }
        if answerer.llm.enabled:
            payload["llm_outcomes"] = dict(answerer.llm.stats)
        # One mode keeps the flat shape scripts already read.
        json.dump(
            payload if len(modes) > 1 else payload["extractive"],
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        print()
        return 0
    for mode, results in modes.items():
        if len(modes) > 1:
            print(f"\n== {mode} ==")
        for r in results:
            mark = "ok  " if r.passed else "FAIL"
            print(f"{mark} {r.item['id']:<6} {r.answer.status:<22} {r.item['question'][:70]}")
        print()
        print(format_table(summarise(results)))
        failed = failures(results)
        if failed:
            print("\nFailed questions:")
            for f in failed:
                print(f"  {f['id']} {f['question'][:60]!r}: {'; '.join(f['reasons'])}")
    if answerer.llm.enabled:
        print(f"\nLLM outcomes: {dict(answerer.llm.stats)}")
    return 0

"""The gap report for staff: what the bot answers, refuses and gets 👎 for.

    python -m bot report [--days N] [--html FILE] [--json]

From the decision log and the gap store (`bot.metrics`), the votes (`bot.telegram.feedback`)
and the curated answers in knowledge/svar/: questions per day; the share answered, refused and
curated; the refused questions grouped by similarity (most frequent first); 👎 with reasons;
hits per curated entry (entries nobody hit are listed), how often each was suggested below its
serving threshold and how often a user took the suggestion; entries that need review. Every stored
question was redacted before it was stored; the report shows nothing else of the users.

The HTML report is one self-contained file (the chart is an embedded PNG); `/rapport` sends the
same chart and a summary to an admin on Telegram.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from bot.config import Settings
from bot.curated import problems
from bot.embedding import Embedder
from bot.metrics import Metrics
from bot.telegram.feedback import FeedbackStore

GROUP_SIMILARITY = 0.88  # refused questions this close (cosine, e5) are one topic
TOP_GROUPS = 15


@dataclass
class Report:
    """Everything the report shows, as plain data."""

    days: int
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    refused_groups: list[dict] = field(default_factory=list)
    thumbs_down: list[dict] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    curated_hits: dict[str, int] = field(default_factory=dict)  # served, however reached
    curated_unused: list[str] = field(default_factory=list)
    # Below the serving threshold an entry is offered as a button: how often, and how often a
    # user pressed it. An entry whose suggestions are taken needs more question variants.
    curated_suggested: dict[str, int] = field(default_factory=dict)
    curated_chosen: dict[str, int] = field(default_factory=dict)
    needs_review: list[dict[str, str]] = field(default_factory=list)

    def share(self, key: str) -> float:
        total = self.totals.get("questions", 0)
        return round(self.totals.get(key, 0) / total, 3) if total else 0.0

    def curated_rows(self) -> list[tuple[str, int, int, int]]:
        """Per entry, most used first: served, of which chosen from a suggestion, suggested."""
        rows = [
            (entry, n, self.curated_chosen.get(entry, 0), self.curated_suggested.get(entry, 0))
            for entry, n in self.curated_hits.items()
        ]
        return sorted(rows, key=lambda row: (-row[1], -row[3], row[0]))

    def suggestions_taken(self) -> str:
        shown = sum(self.curated_suggested.values())
        taken = sum(self.curated_chosen.values())
        return f"{taken} of {shown}" + (f" ({taken / shown:.0%})" if shown else "")

    def to_dict(self) -> dict:
        return {
            "days": self.days,
            "per_day": self.per_day,
            "totals": self.totals,
            "shares": {k: self.share(k) for k in ("answered", "refused", "curated")},
            "refused_groups": self.refused_groups,
            "thumbs_down": self.thumbs_down,
            "reasons": self.reasons,
            "curated_hits": self.curated_hits,
            "curated_unused": self.curated_unused,
            "curated_suggested": self.curated_suggested,
            "curated_chosen": self.curated_chosen,
            "needs_review": self.needs_review,
        }


def build_report(
    settings: Settings,
    embedder: Embedder | None,
    days: int = 30,
    metrics: Metrics | None = None,
    feedback: FeedbackStore | None = None,
) -> Report:
    """Collect the report's figures for the last `days` days."""
    metrics = metrics or Metrics(settings.data_dir / "metrics.sqlite3")
    feedback = feedback or FeedbackStore(settings.data_dir / "feedback.sqlite3")
    report = Report(days=days)
    decisions = metrics.decisions(days)
    per_day: dict[str, Counter] = defaultdict(Counter)
    for row in decisions:
        per_day[row["at"][:10]][_kind(row)] += 1
    today = datetime.now(UTC).date()
    for offset in range(days - 1, -1, -1):
        day = (today - timedelta(days=offset)).isoformat()
        counts = per_day.get(day, Counter())
        report.per_day[day] = {k: counts.get(k, 0) for k in ("answered", "curated", "refused")}
    kinds = Counter(_kind(row) for row in decisions)
    report.totals = {
        "questions": len(decisions),
        "answered": kinds["answered"],
        "curated": kinds["curated"],
        "refused": kinds["refused"],
    }
    report.refused_groups = group_questions([g["question"] for g in metrics.gaps(days)], embedder)
    votes = feedback.votes(days)
    down = [v for v in votes if v["vote"] == -1]
    report.reasons = dict(Counter(v["reason"] or "no reason given" for v in down))
    report.thumbs_down = [
        {
            "at": v["created_at"],
            "reason": v["reason"],
            "status": v["status"],
            "question": v["question"],
        }
        for v in down
    ]
    hits = Counter(row["curated_id"] for row in decisions if row["curated_id"])
    from bot.ingest.curated import load_entries, source_states

    entries, failures = load_entries(settings.knowledge_dir)
    report.curated_hits = {e.id: hits.get(e.id, 0) for e in entries}
    suggested = Counter(row["suggested_id"] for row in decisions if row["suggested_id"])
    chosen = Counter(row["curated_id"] for row in decisions if row["chosen"])
    report.curated_suggested = {e.id: suggested.get(e.id, 0) for e in entries}
    report.curated_chosen = {e.id: chosen.get(e.id, 0) for e in entries}
    report.curated_unused = [e.id for e in entries if not hits.get(e.id)]
    states = source_states(settings, {s for e in entries for s in e.sources}, {}, set())
    for entry in entries:
        for reason in problems(entry, {s: states[s].content for s in entry.sources}, date.today()):
            report.needs_review.append({"entry": entry.file, "reason": reason})
    for failure in failures:
        report.needs_review.append({"entry": failure["document"], "reason": failure["reason"]})
    return report


def _kind(row: dict) -> str:
    if row["status"] == "curated":
        return "curated"
    return "refused" if row["refused"] else "answered"


def group_questions(questions: list[str], embedder: Embedder | None) -> list[dict]:
    """Questions grouped by meaning (greedy, by cosine similarity), biggest group first."""
    if not questions:
        return []
    if embedder is None:
        groups: dict[str, list[str]] = defaultdict(list)
        for q in questions:
            groups[" ".join(q.lower().split())].append(q)
        clusters = list(groups.values())
    else:
        vectors = np.vstack([embedder.embed_query(q) for q in questions])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        clusters, centres = [], []
        for q, v in zip(questions, vectors, strict=True):
            sims = [float(c @ v) for c in centres]
            best = int(np.argmax(sims)) if sims else -1
            if best >= 0 and sims[best] >= GROUP_SIMILARITY:
                clusters[best].append(q)
            else:
                clusters.append([q])
                centres.append(v)
    clusters.sort(key=lambda c: -len(c))
    return [
        {"count": len(c), "example": Counter(c).most_common(1)[0][0], "questions": sorted(set(c))}
        for c in clusters[:TOP_GROUPS]
    ]


# -- rendering ------------------------------------------------------------------------------------


def chart_png(report: Report, dpi: int = 100) -> bytes:
    """Questions per day, stacked by answered / curated / refused, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = list(report.per_day)
    values = {k: [report.per_day[d][k] for d in days] for k in ("answered", "curated", "refused")}
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=dpi)
    bottom = np.zeros(len(days))
    colours = {"answered": "#2a7ab0", "curated": "#3aa66b", "refused": "#d0643b"}
    for key in ("answered", "curated", "refused"):
        ax.bar(range(len(days)), values[key], bottom=bottom, label=key, color=colours[key])
        bottom += np.array(values[key])
    step = max(1, len(days) // 10)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]], fontsize=8)
    ax.set_ylabel("questions")
    ax.set_title(f"Spørg Rådet: questions per day, last {report.days} days")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def summary_text(report: Report, limit: int = 5) -> str:
    """A short plain-text summary (the terminal, and the photo caption on Telegram)."""
    t = report.totals
    lines = [
        f"Spørg Rådet, last {report.days} days: {t['questions']} questions; "
        f"answered {report.share('answered'):.0%}, curated {report.share('curated'):.0%}, "
        f"refused {report.share('refused'):.0%}.",
    ]
    if report.refused_groups:
        lines.append("Most refused:")
        lines += [f"  {g['count']}× {g['example']}" for g in report.refused_groups[:limit]]
    if report.reasons:
        lines.append("👎 reasons: " + ", ".join(f"{k} {v}" for k, v in report.reasons.items()))
    if report.curated_unused:
        lines.append(f"Curated entries without hits: {len(report.curated_unused)}")
    if any(report.curated_suggested.values()):
        lines.append(f"Suggested reviewed answers taken: {report.suggestions_taken()}")
    if report.needs_review:
        lines.append(f"Curated entries needing review: {len(report.needs_review)}")
    return "\n".join(lines)


def render_text(report: Report) -> str:
    """The full report for the terminal."""
    lines = [
        summary_text(report, limit=TOP_GROUPS),
        "",
        "Questions per day (answered/curated/refused):",
    ]
    lines += [
        f"  {day}  {c['answered']:>4} {c['curated']:>4} {c['refused']:>4}"
        for day, c in report.per_day.items()
        if any(c.values())
    ]
    lines.append(
        "Curated answers per entry (served / of which chosen from a suggestion / suggested):"
    )
    lines += [
        f"  {n:>4} {chosen:>4} {suggested:>4}  {entry}"
        for entry, n, chosen, suggested in report.curated_rows()
    ]
    if report.thumbs_down:
        lines.append("👎 (newest first):")
        lines += [
            f"  {v['at'][:10]}  {v['reason'] or '-':<14} {v['question']}"
            for v in report.thumbs_down
        ]
    for item in report.needs_review:
        lines.append(f"REVIEW {item['entry']}: {item['reason']}")
    return "\n".join(lines)


def render_html(report: Report) -> str:
    """One self-contained HTML file (the chart embedded as a data URI); opens offline."""
    e = html.escape
    chart = base64.b64encode(chart_png(report)).decode("ascii")
    t = report.totals

    def table(head: list[str], rows: list[list[object]]) -> str:
        cells = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><tr>{cells}</tr>{body}</table>" if rows else "<p>None.</p>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Spørg Rådet: report, last {report.days} days</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "text-align:left}</style></head><body>",
        f"<h1>Spørg Rådet: last {report.days} days</h1>",
        f"<p>{t['questions']} questions: answered {report.share('answered'):.0%}, "
        f"curated {report.share('curated'):.0%}, refused {report.share('refused'):.0%}.</p>",
        f"<img alt='Questions per day' src='data:image/png;base64,{chart}'>",
        "<h2>Most refused questions (grouped by meaning)</h2>",
        table(
            ["count", "example", "all wordings"],
            [[g["count"], g["example"], " | ".join(g["questions"])] for g in report.refused_groups],
        ),
        "<h2>👎 with reasons</h2>",
        table(["reason", "count"], [[k, v] for k, v in report.reasons.items()]),
        table(
            ["date", "reason", "answer", "question"],
            [[v["at"][:10], v["reason"], v["status"], v["question"]] for v in report.thumbs_down],
        ),
        "<h2>Curated answers: hits per entry</h2>",
        "<p>Below its serving threshold an entry is offered as a button. Suggestions taken: "
        + e(report.suggestions_taken())
        + ". An entry whose suggestions users often take may need more question variants.</p>",
        table(
            ["entry", "served", "of which chosen from a suggestion", "suggested"],
            [list(row) for row in report.curated_rows()],
        ),
        "<p>Without hits: " + e(", ".join(report.curated_unused) or "none") + "</p>",
        "<h2>Curated answers needing review</h2>",
        table(["entry", "reason"], [[r["entry"], r["reason"]] for r in report.needs_review]),
        "</body></html>",
    ]
    return "\n".join(parts)

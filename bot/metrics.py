"""Every answer logged as a decision, and the questions the bot could not answer.

`answers` holds one row per answer without any user text: the decision (answered, refused
with its status, curated with the entry, and whether the user chose it from a suggestion), the
reviewed answer suggested below the serving threshold, the language, the gate's confidence or
the curated match score, the cited files and the latency. `gaps` holds the questions that were
refused because the material had no answer, redacted (CPR, phone, e-mail and unknown names
removed), so staff can see what is missing (`python -m bot report`). Both live in SQLite under DATA_DIR
next to the feedback votes and are purged after the same retention period.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.answer.models import Answer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    language TEXT NOT NULL,
    refused INTEGER NOT NULL,
    total_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_at ON answers (at);
CREATE TABLE IF NOT EXISTS gaps (
    at TEXT NOT NULL,
    language TEXT NOT NULL,
    question TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gaps_at ON gaps (at);
"""
# Columns added after the first release; an older file gains them on open.
_ADDED_COLUMNS = {
    "curated_id": "TEXT NOT NULL DEFAULT ''",
    "score": "REAL NOT NULL DEFAULT 0",
    "cited_files": "TEXT NOT NULL DEFAULT ''",
    "suggested_id": "TEXT NOT NULL DEFAULT ''",
    "chosen": "INTEGER NOT NULL DEFAULT 0",
}


class Metrics:
    """Append-only answer log without any user text."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with sqlite3.connect(path) as db:
            db.executescript(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(answers)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE answers ADD COLUMN {column} {kind}")

    def record(self, answer: Answer, redacted_question: str | None = None) -> None:
        """Log the decision; a question refused for lack of material is kept (redacted).

        `redacted_question` must already be redacted by the caller (`Answerer.redact`).
        """
        now = datetime.now(UTC).isoformat(timespec="seconds")
        score = (
            answer.curated["score"] if answer.curated else answer.evidence.get("confidence", 0.0)
        )
        with self._lock, sqlite3.connect(self.path, timeout=10) as db:
            db.execute(
                "INSERT INTO answers (at, status, language, refused, total_ms, curated_id, score,"
                " cited_files, suggested_id, chosen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    answer.status,
                    answer.language,
                    int(answer.refused),
                    float(answer.timings_ms.get("total", 0.0)),
                    answer.curated["id"] if answer.curated else "",
                    float(score),
                    ",".join(c.file for c in answer.citations),
                    answer.suggestion["id"] if answer.suggestion else "",
                    int(bool(answer.curated and answer.curated.get("chosen"))),
                ),
            )
            if answer.status == "not_found" and redacted_question:
                db.execute(
                    "INSERT INTO gaps (at, language, question) VALUES (?, ?, ?)",
                    (now, answer.language, redacted_question[:1000]),
                )

    def decisions(self, days: int) -> list[dict]:
        """The answers of the last `days` days: time, status, language, curated entry, score,
        the suggested entry, and whether a curated answer was chosen from a suggestion."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with sqlite3.connect(self.path, timeout=10) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT at, status, language, refused, curated_id, score, cited_files, total_ms,"
                " suggested_id, chosen FROM answers WHERE at >= ? ORDER BY at",
                (since,),
            ).fetchall()
        return [dict(r) for r in rows]

    def gaps(self, days: int) -> list[dict]:
        """Refused questions (redacted) of the last `days` days."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with sqlite3.connect(self.path, timeout=10) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT at, language, question FROM gaps WHERE at >= ? ORDER BY at", (since,)
            ).fetchall()
        return [dict(r) for r in rows]

    def summary(self, days: int = 30) -> dict:
        """Questions, refusals by status, and latency percentiles over the last `days`."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with sqlite3.connect(self.path, timeout=10) as db:
            rows = db.execute(
                "SELECT status, refused, total_ms FROM answers WHERE at >= ?", (since,)
            ).fetchall()
        latencies = sorted(r[2] for r in rows)
        by_status: dict[str, int] = {}
        for status, _, _ in rows:
            by_status[status] = by_status.get(status, 0) + 1

        def pct(p: int) -> float | None:
            if len(latencies) < 2:
                return latencies[0] if latencies else None
            return round(statistics.quantiles(latencies, n=100, method="inclusive")[p - 1], 1)

        return {
            "days": days,
            "questions": len(rows),
            "refused": sum(r[1] for r in rows),
            "by_status": by_status,
            "latency_ms": {"p50": pct(50), "p95": pct(95)},
        }

    def purge(self, days: int) -> int:
        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with sqlite3.connect(self.path, timeout=10) as db:
            removed = db.execute("DELETE FROM answers WHERE at < ?", (cutoff,)).rowcount
            return removed + db.execute("DELETE FROM gaps WHERE at < ?", (cutoff,)).rowcount

"""Answer metrics for operations: status, language and latency per answer, never the text.

Stored in SQLite under DATA_DIR next to the feedback votes, purged with the same retention.
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
"""


class Metrics:
    """Append-only answer log without any user text."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with sqlite3.connect(path) as db:
            db.executescript(_SCHEMA)

    def record(self, answer: Answer) -> None:
        with self._lock, sqlite3.connect(self.path, timeout=10) as db:
            db.execute(
                "INSERT INTO answers (at, status, language, refused, total_ms) VALUES (?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    answer.status,
                    answer.language,
                    int(answer.refused),
                    float(answer.timings_ms.get("total", 0.0)),
                ),
            )

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
            return db.execute("DELETE FROM answers WHERE at < ?", (cutoff,)).rowcount

"""Feedback votes (👍/👎, and why for 👎) in SQLite under DATA_DIR.

Nothing is written when an answer is sent. Only when someone votes is a row stored: the answer
id, the redacted question, the cited files, the vote, the reason (after 👎: wrong, missing,
misunderstood, other) and the time. Rows older than the retention period are purged.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.privacy import redact

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL,
    question TEXT NOT NULL,
    cited_files TEXT NOT NULL,
    status TEXT NOT NULL,
    vote INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created_at);
"""
# Why a 👎 was given; the codes travel in callback_data, so they stay one letter.
REASONS = {"w": "wrong", "m": "missing", "u": "misunderstood", "o": "other"}


@dataclass(frozen=True)
class PendingAnswer:
    """What a vote needs to know about an answer; held in memory only until then."""

    question: str
    cited_files: tuple[str, ...]
    status: str
    at: float


class FeedbackStore:
    """Votes in SQLite; pending answers in a bounded in-memory map."""

    def __init__(
        self,
        path: Path,
        pending_limit: int = 2000,
        pending_ttl: float = 86400,
        redactor: Callable[[str], str] = redact,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.redactor = redactor
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, PendingAnswer] = OrderedDict()
        self._limit = pending_limit
        self._ttl = pending_ttl
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
            if "reason" not in columns:
                db.execute("ALTER TABLE feedback ADD COLUMN reason TEXT NOT NULL DEFAULT ''")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def remember(self, answer_id: str, question: str, cited_files: list[str], status: str) -> None:
        """Keep an answer's redacted question in memory so a later vote can be stored with it."""
        with self._lock:
            self._pending[answer_id] = PendingAnswer(
                self.redactor(question)[:1000], tuple(cited_files), status, time.monotonic()
            )
            while len(self._pending) > self._limit:
                self._pending.popitem(last=False)

    def vote(self, answer_id: str, positive: bool) -> bool:
        """Store one vote; False if this answer was already voted on."""
        with self._lock:
            pending = self._pending.pop(answer_id, None)
        if pending is not None and time.monotonic() - pending.at > self._ttl:
            pending = None
        with self._connect() as db:
            seen = db.execute("SELECT 1 FROM feedback WHERE answer_id = ?", (answer_id,)).fetchone()
            if seen:
                return False
            db.execute(
                "INSERT INTO feedback (answer_id, question, cited_files, status, vote, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    pending.question if pending else "",
                    ",".join(pending.cited_files) if pending else "",
                    pending.status if pending else "",
                    1 if positive else -1,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
        return True

    def set_reason(self, answer_id: str, code: str) -> bool:
        """Store why a 👎 was given; False for an unknown code or an answer without a 👎."""
        reason = REASONS.get(code)
        if reason is None:
            return False
        with self._connect() as db:
            changed = db.execute(
                "UPDATE feedback SET reason = ? WHERE answer_id = ? AND vote = -1",
                (reason, answer_id),
            ).rowcount
        return bool(changed)

    def votes(self, days: int) -> list[dict[str, str | int]]:
        """Votes of the last `days` days, newest first (for the gap report)."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [
                dict(r)
                for r in db.execute(
                    "SELECT created_at, vote, reason, status, cited_files, question FROM feedback"
                    " WHERE created_at >= ? ORDER BY created_at DESC",
                    (since,),
                )
            ]

    def counts(self) -> dict[str, int]:
        """Number of 👍 and 👎 votes."""
        with self._connect() as db:
            rows = dict(db.execute("SELECT vote, COUNT(*) FROM feedback GROUP BY vote").fetchall())
        return {"up": rows.get(1, 0), "down": rows.get(-1, 0)}

    def rows(self) -> list[dict[str, str | int]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [
                dict(r)
                for r in db.execute(
                    "SELECT answer_id, created_at, vote, reason, status, cited_files, question "
                    "FROM feedback ORDER BY id"
                )
            ]

    def export(self, as_csv: bool = False) -> str:
        """All votes as CSV or JSON lines, for staff."""
        rows = self.rows()
        if as_csv:
            buffer = io.StringIO()
            writer = csv.DictWriter(
                buffer,
                fieldnames=[
                    "answer_id",
                    "created_at",
                    "vote",
                    "reason",
                    "status",
                    "cited_files",
                    "question",
                ],
            )
            writer.writeheader()
            writer.writerows(rows)
            return buffer.getvalue()
        import json

        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def purge(self, days: int) -> int:
        """Delete votes older than `days`; returns how many."""
        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        with self._connect() as db:
            return db.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,)).rowcount

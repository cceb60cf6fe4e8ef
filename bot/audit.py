"""The audit log of changes staff make from chat: DATA_DIR/audit.log, append-only JSON lines.

One line per change: time, admin id, action (upload, replace, remove, add-web), document and
result. Staff read the last few with `python -m bot status` and `/status`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

_lock = threading.Lock()


def audit_path(data_dir: Path) -> Path:
    return data_dir / "audit.log"


def record(data_dir: Path, admin: int, action: str, document: str, result: str) -> dict:
    """Append one change; returns the line written."""
    line = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "admin": admin,
        "action": action,
        "document": document,
        "result": result,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    with _lock, audit_path(data_dir).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line


def last(data_dir: Path, n: int = 5) -> list[dict]:
    """The last n changes, newest last (unreadable lines are skipped)."""
    path = audit_path(data_dir)
    if not path.exists():
        return []
    lines: deque[dict] = deque(maxlen=n)
    with path.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
    return list(lines)

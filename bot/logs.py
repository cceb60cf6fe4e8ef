"""Logging set-up: one format for every entry point, always redacted, optionally JSON."""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

from bot.config import Settings
from bot.privacy import redact


class RedactingFilter(logging.Filter):
    """Redact personal data from every record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(settings: Settings, stream: TextIO = sys.stderr) -> None:
    """Configure the root logger once; quiet the chatty libraries."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    # Libraries such as bm25s set their own loggers to DEBUG on import; the handler decides.
    handler.setLevel(settings.log_level.upper())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for noisy in ("httpx", "httpcore", "chromadb", "telegram.ext", "apscheduler", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

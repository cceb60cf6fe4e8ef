"""A marker that a process is answering from an embedded store, which ingest.py respects.

Chroma's embedded vector index lives inside each process. If `ingest.py` writes to a DATA_DIR
that a running bot serves from, the bot keeps searching its old vectors. So every serving
process holds a shared lock on `DATA_DIR/serving.lock` for its lifetime, and the ingest
command refuses (exit status 2, with what to do instead) while any process holds it. The bot's
own refresh (`/opdater`) runs inside the serving process and is not affected. A Chroma server
needs none of this: every process sees the server's index.
"""

from __future__ import annotations

import fcntl
import logging
from typing import IO

from bot.config import Settings

log = logging.getLogger(__name__)
_held: list[IO[str]] = []  # kept open (and locked) until the process exits


def _path(settings: Settings):
    return settings.data_dir / "serving.lock"


def hold(settings: Settings) -> None:
    """Mark this process as serving from an embedded store (no-op for a Chroma server)."""
    if settings.chroma_host:
        return
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        handle = _path(settings).open("a+")
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except (OSError, BlockingIOError) as exc:
        # A read-only DATA_DIR cannot be ingested into by anyone, so there is nothing to guard.
        log.debug("serving: no marker in %s (%s)", settings.data_dir, exc)
        return
    _held.append(handle)


def elsewhere(settings: Settings) -> bool:
    """Whether another process is serving from this DATA_DIR's embedded store."""
    if settings.chroma_host or not _path(settings).exists():
        return False
    try:
        with _path(settings).open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


MESSAGE = (
    "A running bot is answering from the embedded store in DATA_DIR {data_dir}. Its vector "
    "index lives inside that process, so an ingest from here would leave it searching stale "
    "vectors. Refresh from the bot instead (/opdater in Telegram, for staff), or stop the bot, "
    "run the ingest and start the bot again; or use a Chroma server (CHROMA_HOST)."
)

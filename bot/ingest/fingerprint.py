"""A no-change refresh without opening the index: the fingerprint of the last clean run.

A plain `python ingest.py` (every file, no flags) that finds nothing to do still costs seconds,
most of them starting Chroma. After a clean full run (nothing failed, nothing to review; its
warnings, which follow from the files alone, are kept and said again) the run records a
fingerprint in DATA_DIR: every file it read (path, size, modified
time), the settings and the ingest code it ran with, today's date (curated answers expire by
date) and the state of the embedded store's database file. When the next plain run computes
the same fingerprint, nothing can have changed and it reports "unchanged" at once, as make does
with its stamps. Anything else takes the normal path, which removes the fingerprint before it
writes. A Chroma server is shared with other hosts, so server mode never takes the shortcut.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import date
from pathlib import Path

from bot.config import Settings
from bot.ingest.chunking import CHUNKER_VERSION

FINGERPRINT = "refresh-fingerprint.json"
_CODE = Path(__file__).resolve().parent  # the ingest package: a new version re-checks


def path_of(settings: Settings) -> Path:
    return settings.data_dir / FINGERPRINT


def compute(settings: Settings) -> str | None:
    """The fingerprint of a full refresh now, or None when the shortcut cannot be trusted."""
    if settings.chroma_host:
        return None
    database = settings.chroma_dir / "chroma.sqlite3"
    try:
        inputs = [
            ("settings", _settings_key(settings)),
            ("today", date.today().isoformat()),
            ("store", _stat(database)),
            *_tree(settings.knowledge_dir),
            *_tree(settings.uploads_path),
            *_tree(_CODE, suffix=".py"),
            ("curated code", _stat(_CODE.parent / "curated.py")),
        ]
    except OSError:
        return None
    digest = hashlib.sha256(json.dumps(inputs, ensure_ascii=False).encode())
    return digest.hexdigest()


def matches(settings: Settings) -> dict | None:
    """The last clean run's summary when the fingerprint is unchanged, else None."""
    try:
        saved = json.loads(path_of(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    now = compute(settings)
    if now is None or saved.get("fingerprint") != now:
        return None
    return saved


def save(settings: Settings, summary: dict) -> None:
    """Record a clean full run (call after every write to the store, so its file is final)."""
    now = compute(settings)
    if now is None:
        return
    target = path_of(settings)
    temporary = target.with_suffix(".tmp")
    try:
        temporary.write_text(
            json.dumps({"fingerprint": now, **summary}, ensure_ascii=False), encoding="utf-8"
        )
        os.replace(temporary, target)
    except OSError:
        return  # no shortcut next time; nothing else depends on it


def forget(settings: Settings) -> None:
    """Before a run writes: a crash part-way must never leave a fingerprint that matches."""
    with contextlib.suppress(FileNotFoundError):
        path_of(settings).unlink()


def _settings_key(settings: Settings) -> list:
    return [
        CHUNKER_VERSION,
        str(settings.knowledge_dir.resolve()),
        str(settings.uploads_path.resolve()),
        settings.collection,
        settings.embedding_backend,
        settings.embedding_model_name,
        settings.chunk_max_words,
        settings.chunk_overlap_words,
        settings.max_document_bytes,
        settings.max_document_units,
    ]


def _stat(path: Path) -> list:
    try:
        info = path.stat()
    except FileNotFoundError:
        return ["missing"]
    return [info.st_size, info.st_mtime_ns]


def _tree(root: Path, suffix: str = "") -> list:
    """(path, size, mtime) of every entry below root, symlinks as links (never followed)."""
    if not root.exists():
        return [(str(root), "missing")]
    out = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files) + dirs:
            if suffix and not name.endswith(suffix):
                continue
            path = Path(folder) / name
            info = path.lstat()
            link = os.readlink(path) if path.is_symlink() else ""
            out.append((str(path), info.st_size, info.st_mtime_ns, link))
    return out

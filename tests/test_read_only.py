"""A built index on a read-only DATA_DIR (a read-only container volume) still answers."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from bot.ingest.pipeline import run_ingest
from tests.conftest import REPO, make_settings

# As root every folder is writable; a user namespace without privileges sees the permission
# bits as a container's unprivileged user does.
UNSHARE = shutil.which("unshare")


def _unprivileged_works() -> bool:
    if not UNSHARE:
        return False
    return subprocess.run([UNSHARE, "-U", "true"], capture_output=True).returncode == 0


def _read_only(path) -> None:
    for item in [path, *path.rglob("*")]:
        item.chmod(item.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.mark.skipif(
    not _unprivileged_works(), reason="needs `unshare -U` to drop root's write access"
)
def test_ask_answers_from_a_read_only_data_dir_and_ingest_says_why_it_cannot(
    tmp_path, small_kb, embedder
):
    data = tmp_path / "data"
    assert run_ingest(make_settings(data, small_kb), embedder=embedder).exit_code == 0
    _read_only(data)
    env = {**os.environ, "DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb)}
    try:
        asked = subprocess.run(
            [UNSHARE, "-U", sys.executable, "-m", "bot", "ask", "--json", "Hvad er UngiFokus?"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert asked.returncode == 0, asked.stderr
        payload = json.loads(asked.stdout)
        assert payload["status"] == "answered" and "UngiFokus" in payload["answer"]
        ingest = subprocess.run(
            [UNSHARE, "-U", sys.executable, str(REPO / "ingest.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert ingest.returncode == 2 and "cannot be written" in ingest.stderr
    finally:
        for item in [data, *data.rglob("*")]:
            item.chmod(item.stat().st_mode | stat.S_IWUSR)

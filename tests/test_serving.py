"""ingest.py from another process refuses while a bot serves from the same embedded store."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import make_settings
from tests.test_ingest import run_cli


def test_an_ingest_from_another_process_waits_for_the_serving_bot(tmp_path, small_kb, embedder):
    from bot.ingest.pipeline import run_ingest

    data = tmp_path / "data"
    run_ingest(make_settings(data, small_kb), embedder=embedder)
    env = {**os.environ, "DATA_DIR": str(data), "KNOWLEDGE_DIR": str(small_kb)}
    env.pop("CHROMA_HOST", None)
    chat = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data / "serving.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        (small_kb / "vision.md").write_text(
            (small_kb / "vision.md").read_text(encoding="utf-8") + "\nRådet mødes hver tirsdag.\n",
            encoding="utf-8",
        )
        refused = run_cli(env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "/opdater" in refused.stderr and "running bot" in refused.stderr
        # The bot keeps answering, from a store nobody changed under it.
        out, _ = chat.communicate("Hvad er UngiFokus?\n/quit\n", timeout=120)
        assert "UngiFokus" in out
    finally:
        if chat.poll() is None:
            chat.kill()
    done = run_cli(env=env)
    assert done.returncode == 0, done.stderr
    assert "vision.md" in done.stdout

"""The question bank is sound: every expected fact is in a listed source, nothing is asked twice."""

from __future__ import annotations

import json
from collections import Counter

from bot.evaluate import normalise
from bot.train import BANK_DIR, load_bank
from tests.conftest import KNOWLEDGE

KINDS_ANSWERABLE = {"specific", "paraphrase", "broad", "typo", "followup"}
KINDS_UNANSWERABLE = {
    "absent",
    "future",
    "other-municipality",
    "personal",
    "out-of-scope",
    "injection",
}


def _texts() -> dict[str, str]:
    return {
        p.name: normalise(p.read_text(encoding="utf-8")) for p in KNOWLEDGE.iterdir() if p.is_file()
    }


def test_every_line_is_a_question_object():
    for path in sorted(BANK_DIR.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            item = json.loads(line)
            assert item["language"] in ("da", "en"), (path.name, number)
            assert isinstance(item["answerable"], bool), (path.name, number)
            assert item["kind"] in KINDS_ANSWERABLE | KINDS_UNANSWERABLE, (path.name, number)
            assert (item["kind"] in KINDS_ANSWERABLE) == item["answerable"], (path.name, number)
            if item["kind"] == "followup":
                assert item.get("previous"), (path.name, number)


def test_every_fact_occurs_in_a_listed_source():
    texts = _texts()
    for item in load_bank():
        if not item["answerable"]:
            assert not item["must_contain"] and not item["sources"], item["id"]
            continue
        assert item["must_contain"] and item["sources"], item["id"]
        for source in item["sources"]:
            assert source in texts, (item["id"], source)
        for fact in item["must_contain"]:
            assert any(normalise(fact) in texts[s] for s in item["sources"]), (item["id"], fact)


def test_no_duplicates_and_the_mix_the_issue_asks_for():
    items = load_bank()
    ids = Counter(item["id"] for item in items)
    questions = Counter(normalise(item["question"]) for item in items)
    assert max(ids.values()) == 1
    assert max(questions.values()) == 1
    assert len(items) >= 600
    english = sum(item["language"] == "en" for item in items) / len(items)
    unanswerable = sum(not item["answerable"] for item in items) / len(items)
    assert 0.35 <= english <= 0.45
    assert unanswerable >= 1 / 3 - 0.02


def test_every_document_has_questions():
    covered = {item["sources"][0] for item in load_bank() if item["answerable"]}
    documents = {p.name for p in KNOWLEDGE.iterdir() if p.suffix in (".md", ".txt")}
    assert documents <= covered

"""The optional LLM composer against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import pytest

from bot.answer.core import Answerer
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI, Reply

QUESTION = "Hvem er formand for Rådet for Sociale Investeringer?"


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def llm_answerer(server, answerer, kb_settings):
    settings = make_settings(
        kb_settings.data_dir,
        llm_base_url=server.base_url,
        llm_model="fake-model",
        llm_timeout_seconds=4.0,  # generous: the first call also builds the HTTP client
        # A reviewed answer is served as written, never rewritten by an LLM: these tests are
        # about the LLM composer over retrieved passages.
        curated_answers=False,
    )
    return Answerer(settings, store=answerer.store, embedder=answerer.embedder)


def test_a_good_generated_answer_is_used_with_its_citations(server, llm_answerer):
    server.script(Reply("Formanden for Rådet er Gurli Martinussen [1]."))
    answer = llm_answerer.ask(QUESTION)
    assert answer.generated and "Gurli Martinussen [1]" in answer.text
    assert [c.n for c in answer.citations] == [1]
    assert "Gurli Martinussen" in answer.citations[0].quote
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "[1]" in prompt and "https://" not in prompt  # links are tokens in the prompt
    assert llm_answerer.llm.stats["used"] == 1


def test_a_streamed_reply_is_assembled(server, llm_answerer):
    server.script(Reply(chunks=["Formanden ", "er Gurli ", "Martinussen [1]."]))
    answer = llm_answerer.ask(QUESTION)
    assert answer.generated and answer.text == "Formanden er Gurli Martinussen [1]."
    assert server.requests[0]["stream"] is True


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply("Formanden er Gurli Martinussen [9]."), "fallback:citation out of range"),
        (Reply("Formanden er Gurli Martinussen."), "fallback:no citation"),
        (
            Reply("Rådet har 977 medlemmer, og formanden er Gurli Martinussen [1]."),
            "fallback:number not in sources: 977",
        ),
        (Reply("The chair of the Council is Gurli Martinussen [1]."), "fallback:wrong language"),
        (Reply(status=500), "fallback:error:InternalServerError"),
        (Reply("Formanden er Gurli Martinussen [1].", delay=6.0), "fallback:timeout"),
    ],
)
def test_untrustworthy_replies_fall_back_to_the_extractive_answer(
    server, llm_answerer, reply, reason
):
    server.script(reply)
    answer = llm_answerer.ask(QUESTION)
    assert not answer.generated
    assert "Gurli Martinussen" in answer.text and answer.citations  # the extractive answer
    assert llm_answerer.llm.stats[reason] == 1, dict(llm_answerer.llm.stats)


def test_invented_links_are_dropped_and_tokens_mapped_back(server, llm_answerer):
    server.script(
        Reply(
            "Se Rådets side ⟨LINK1⟩ og https://phishing.example/login – formanden er "
            "Gurli Martinussen [1]."
        )
    )
    answer = llm_answerer.ask(QUESTION)
    assert answer.generated
    assert "phishing.example" not in answer.text
    assert answer.citations[0].url in answer.text or "⟨LINK" not in answer.text


def test_refusals_never_reach_the_llm(server, llm_answerer):
    from dataclasses import replace

    # A gate that refuses everything: whatever the gate refuses is never sent to the LLM.
    prepared = llm_answerer.prepare("Hvad bliver vejret i Aarhus i morgen?", use_llm=True)
    answer = llm_answerer.finish(prepared, replace(llm_answerer.params, threshold=1.01))
    assert answer.refused and server.requests == []


def test_follow_ups_are_condensed_by_the_llm(server, llm_answerer):
    server.script(
        Reply("Hvor mange penge er der investeret i diabetesprojektet?"),
        Reply("Der er investeret 13,3 mio. kr. i diabetesprojektet [1]."),
    )
    llm_answerer.ask("Hvad går diabetesinvesteringen ud på?", chat_id="c1", use_llm=False)
    answer = llm_answerer.ask("og hvad koster den?", chat_id="c1")
    assert "diabetes" in server.requests[0]["messages"][-1]["content"]
    assert "13,3" in answer.text


def test_condensing_failure_falls_back_to_rule_based_expansion(server, llm_answerer):
    server.script(Reply(status=500), Reply(status=500))
    llm_answerer.ask("Hvor mange unge skal ud af hjemløshed?", chat_id="c2", use_llm=False)
    answer = llm_answerer.ask("og diabetes?", chat_id="c2")
    # The LLM failed twice (condensing and writing): the extractive answer still comes, from
    # the follow-up searched with the previous question's words, and the diabetes project is
    # among the three documents retrieved first. Which unit is quoted is the ranker's business,
    # measured on the bank's follow-ups (README: this one quotes the wrong item of a list that
    # holds both figures).
    assert not answer.generated and not answer.refused and answer.citations
    assert answer.search_text.startswith("og diabetes?") and "hjemløshed" in answer.search_text
    assert "projekt-type-2-diabetes.md" in answer.top_files[:3]

"""Splitting documents into quotable units: long tables and lists get a summary unit."""

from __future__ import annotations

from bot.ingest.chunking import chunk_document, label
from bot.ingest.loaders import SourceDocument


def chunks_of(markdown: str):
    doc = SourceDocument("doc", {"title": "Test", "language": "da"}, [(markdown, None)])
    return chunk_document(doc)


def foundation_table(rows: int) -> str:
    names = ["Alfa Fonden", "Beta Fonden", "Gamma Fonden", "Delta Fonden", "Epsilon Fonden"]
    lines = ["## Fonde og investorer", "| Partner | Rolle | Investering |", "|---|---|---|"]
    for name in names[:rows]:
        role = "Stiller en underskudsgaranti og er medinvestor i flere af Rådets indsatser " * 2
        lines.append(f"| **{name}** | {role.strip()} | Housing First og Lær for Livet |")
    return "\n".join(lines)


def test_a_long_table_of_named_rows_gets_a_summary_naming_every_row():
    chunks = chunks_of(foundation_table(5))
    summaries = [c for c in chunks if c.form == "summary"]
    assert [c.text for c in summaries] == [
        "Partner: Alfa Fonden; Beta Fonden; Gamma Fonden; Delta Fonden; Epsilon Fonden."
    ]
    rows = [c for c in chunks if c.form == "item"]
    assert len(rows) == 5 and rows[0].text.startswith("- Partner: Alfa Fonden; Rolle: ")
    assert summaries[0].section == "Fonde og investorer"


def test_a_table_short_enough_to_quote_whole_gets_no_summary():
    short = "| Partner | Rolle |\n|---|---|\n| **A** | x |\n| **B** | y |\n| **C** | z |"
    assert not [c for c in chunks_of(short) if c.form == "summary"]


def test_a_table_of_dates_or_field_names_gets_no_summary():
    rows = "\n".join(
        f"| {year} | En lang beskrivelse af hvad der skete i året, med mange ord om Rådets arbejde "
        f"og om investeringerne, som fylder godt op i tabellen {year} |"
        for year in range(2018, 2026)
    )
    table = f"| Tidspunkt | Begivenhed |\n|---|---|\n{rows}"
    assert not [c for c in chunks_of(table) if c.form == "summary"]


def test_a_long_list_keeps_its_lead_in_and_names_its_labelled_items():
    items = "\n".join(
        f"{i}. **Indsats {name}** – en lang beskrivelse af indsatsen, målgruppen og partnerne, "
        "som gør listen for lang til at citere samlet i ét svar."
        for i, name in enumerate(["Alfa", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"], 1)
    )
    chunks = chunks_of(f"Rådet har startet seks indsatser:\n{items}")
    assert chunks[0].form == "summary"
    assert chunks[0].text == (
        "Rådet har startet seks indsatser: Indsats Alfa; Indsats Beta; Indsats Gamma; "
        "Indsats Delta; Indsats Epsilon; Indsats Zeta."
    )
    assert [c.form for c in chunks[1:]] == ["item"] * 6


def test_a_long_list_of_sentences_keeps_its_lead_in_but_is_not_cut_into_labels():
    items = "\n".join(
        f"- Han fortæller, at punkt {i} handlede om noget helt andet end det forrige, "
        "og at det tog lang tid at blive enige om det i Rådet."
        for i in range(8)
    )
    chunks = chunks_of(f"I et debatindlæg fortæller han bl.a.:\n{items}")
    assert chunks[0].text == "I et debatindlæg fortæller han bl.a.:"
    assert not [c for c in chunks if c.form == "summary"]
    assert all(c.text.endswith("i Rådet.") for c in chunks[1:])


def test_labels_come_from_bold_or_a_dash_and_never_cut_a_sentence():
    assert label("**Bikubenfonden** (DKK 3m)") == "Bikubenfonden"
    assert label("- UngiFokus – tidlig indsats for unge") == "UngiFokus"
    assert label("Han måtte forlade Rådet, da han fik en plads i en fond") is None
    assert label("- Partnere: DSI og Bikubenfonden") == "Partnere"


def test_the_items_of_a_whole_list_are_stored_as_parts_after_every_unit():
    chunks = chunks_of(
        "## Medlemmer\nRådet har tre medlemmer:\n- Alfa Andersen (formand)\n- Beta Berg\n"
        "- Gamma Gram\n\nRådet mødes fire gange om året."
    )
    units = [c for c in chunks if c.form != "part"]
    parts = [c for c in chunks if c.form == "part"]
    assert chunks[: len(units)] == units, "parts come last, so neighbours stay units"
    whole = next(i for i, c in enumerate(units) if c.form == "list")
    assert [p.text for p in parts] == ["- Alfa Andersen (formand)", "- Beta Berg", "- Gamma Gram"]
    assert {p.parent for p in parts} == {whole}
    assert parts[0].window == "Rådet har tre medlemmer:"
    assert "Rådet har tre medlemmer:" in parts[0].embed_text("Test")


def test_a_sentence_or_a_single_item_has_no_parts():
    chunks = chunks_of("Rådet mødes fire gange om året.\n\n- Kun ét punkt her")
    assert not [c for c in chunks if c.form == "part"]

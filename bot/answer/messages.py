"""Every user-facing sentence of the answering core, in Danish and English, in one place."""

from __future__ import annotations

from typing import Literal

Lang = Literal["da", "en"]

TEXTS: dict[str, dict[str, str]] = {
    "lead": {
        "da": "Fra Rådets materiale:",
        "en": "From the Council's material:",
    },
    "lead_danish_sources": {
        "da": "Fra Rådets materiale:",
        "en": "From the Council's material (quoted in Danish):",
    },
    "dates_differ": {
        "da": "Kilderne har forskellige datoer, nyeste først.",
        "en": "The sources have different dates, newest first.",
    },
    "curated_for": {
        "da": "Svar på: {question}",
        "en": "Answer to: {question}",
    },
    "curated_reviewed": {
        "da": "Et gennemgået svar ({reviewer}, gennemgået {date}).",
        "en": "A reviewed answer ({reviewer}, reviewed {date}).",
    },
    "sources_heading": {"da": "Kilder:", "en": "Sources:"},
    "not_found": {
        "da": "Det kan jeg ikke finde svar på i Rådets materiale, og jeg vil ikke gætte.",
        "en": "I can't find an answer to that in the Council's material, and I won't guess.",
    },
    "not_in_sources": {
        "da": "Det svar har Rådets materiale ikke. Materialet siger selv:",
        "en": "The Council's material does not have that answer. It says itself:",
    },
    "where_to_ask": {
        "da": "Du kan læse mere eller spørge Rådet via kommunens side: {url}",
        "en": "You can read more or contact the Council through the municipality's page: {url}",
    },
    "how_to_pitch": {
        "da": "Har du en idé til en social investering, så se her: {title} ({url})",
        "en": "If you have an idea for a social investment, see: {title} ({url})",
    },
    "empty": {
        "da": "Skriv et spørgsmål om Rådet for Sociale Investeringer, så finder jeg svaret i "
        "Rådets materiale.",
        "en": "Write a question about the Council for Social Investments and I'll look it up in "
        "the Council's material.",
    },
    "too_long": {
        "da": "Dit spørgsmål er for langt ({length} tegn). Skriv det gerne kortere, højst {limit} "
        "tegn.",
        "en": "Your question is too long ({length} characters). Please keep it under {limit} "
        "characters.",
    },
    "noise": {
        "da": 'Jeg forstod ikke beskeden. Skriv et spørgsmål med ord, fx "Hvem sidder i Rådet?"',
        "en": "I didn't understand that. Please ask a question in words, e.g. \"Who sits on the "
        'Council?"',
    },
    "injection": {
        "da": "Jeg kan kun svare på spørgsmål om Rådet for Sociale Investeringer ud fra Rådets "
        "materiale, og jeg ændrer ikke mine instruktioner.",
        "en": "I can only answer questions about the Council for Social Investments from its "
        "material, and I don't change my instructions.",
    },
    "personal_data_request": {
        "da": "Jeg udleverer ikke personoplysninger som adresser, telefonnumre eller CPR-numre "
        "om nogen.",
        "en": "I don't give out personal data such as addresses, phone numbers or ID numbers "
        "about anyone.",
    },
    "personal_data_warning": {
        "da": "Del venligst ikke personoplysninger (fx CPR-nummer, telefonnummer eller e-mail) "
        "her. Jeg har ikke gemt dem.",
        "en": "Please don't share personal data (such as a CPR number, phone number or e-mail) "
        "here. I have not stored it.",
    },
    "unavailable": {
        "da": "Jeg kan ikke slå op i Rådets materiale lige nu. Prøv igen om lidt.",
        "en": "I can't reach the Council's material right now. Please try again shortly.",
    },
    "index_empty": {
        "da": "Vidensbasen er tom. Personalet skal køre `python ingest.py` først.",
        "en": "The knowledge base is empty. Staff need to run `python ingest.py` first.",
    },
}


def text_for(language: Lang, key: str, **values: object) -> str:
    """The message `key` in the given language, with values filled in."""
    template = TEXTS[key].get(language) or TEXTS[key]["da"]
    return template.format(**values) if values else template


# Searched once per refresh to find the knowledge base's own page about pitching ideas.
TEXTS["pitch_query"] = {
    "da": "Hvordan kan man komme med en idé til en social investering til Rådet?",
    "en": "How can an organisation submit an idea for a social investment to the Council?",
}

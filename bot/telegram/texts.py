"""What the Telegram bot says, in Danish and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "da": (
            "Hej! Jeg er <b>Spørg Rådet</b>. Jeg svarer på spørgsmål om Aarhus Kommunes "
            "<b>Rådet for Sociale Investeringer</b>: hvad Rådet er, hvem der sidder i det, "
            "hvilke sociale investeringer det har sat i gang, og hvordan man kommer med en idé.\n\n"
            "Jeg svarer kun ud fra Rådets eget materiale og viser altid kilderne. Står svaret "
            "ikke i materialet, siger jeg det.\n\n"
            "<i>Privatliv:</i> skriv ikke CPR-nummer eller andre personoplysninger. Jeg gemmer "
            "ikke dine beskeder; kun hvis du giver et svar 👍 eller 👎, eller hvis jeg ikke kan "
            "svare, gemmes spørgsmålet (uden personoplysninger og navne) i {days} dage. Se /om.\n\nPrøv fx: <i>Hvem er formand for Rådet?</i>"
        ),
        "en": (
            "Hi! I am <b>Spørg Rådet</b> (Ask the Council). I answer questions about Aarhus "
            "Municipality's <b>Council for Social Investments</b>: what it is, who sits on it, "
            "which social investments it has started and how to pitch an idea.\n\n"
            "I only answer from the Council's own material and always show my sources. If the "
            "answer is not in the material, I say so.\n\n"
            "<i>Privacy:</i> please don't write your CPR number or other personal data. I don't "
            "store your messages; only if you rate an answer 👍 or 👎, or if I cannot answer, is "
            "the question (without personal data and names) kept for {days} days. See /about.\n\nTry: <i>Who chairs the council?</i>"
        ),
    },
    "help": {
        "da": (
            "Skriv dit spørgsmål som en almindelig besked. Kommandoer:\n"
            "/kilder – kilderne jeg svarer ud fra, med datoer\n"
            "/ide – sådan kommer du med en idé til Rådet\n"
            "/om – hvad jeg gemmer, og hvad jeg ikke kan\n"
            "/ny – glem samtalen og start forfra\n"
            "I grupper svarer jeg, når du nævner mig (@{username}) eller svarer på min besked."
        ),
        "en": (
            "Just write your question. Commands:\n"
            "/sources – the sources I answer from, with dates\n"
            "/idea – how to pitch an idea to the Council\n"
            "/about – what I store and what I can't do\n"
            "/new – forget the conversation and start over\n"
            "In groups I answer when you mention me (@{username}) or reply to my message."
        ),
    },
    "about": {
        "da": (
            "<b>Om Spørg Rådet</b>\n"
            "• Svarene er citater fra Rådets materiale (sider, projektbeskrivelser, årsrapporter) "
            "med kilde og dato. Jeg gætter ikke og finder ikke på.\n"
            "• Materialet kan være forældet; datoerne viser, hvor gammel en oplysning er.\n"
            "• Jeg kan ikke behandle personlige sager og kender ikke til andre kommuners råd.\n"
            "• Jeg gemmer ikke dine beskeder. Samtalen huskes kun kort i hukommelsen, så "
            "opfølgende spørgsmål virker (/ny glemmer den).\n"
            "• Stemmer du 👍/👎, gemmes spørgsmålet uden personoplysninger og navne, de citerede "
            "kilder, din stemme og evt. grunden i {days} dage, så svarene kan forbedres.\n"
            "• Kan jeg ikke svare, gemmes spørgsmålet på samme måde i {days} dage, så Rådets "
            "medarbejdere kan se, hvad der mangler i materialet.\n"
            '• Svar mærket "gennemgået" er skrevet og gennemgået af Rådets sekretariat, med '
            "dato."
        ),
        "en": (
            "<b>About Spørg Rådet</b>\n"
            "• Answers quote the Council's material (pages, project descriptions, annual reports) "
            "with source and date. I don't guess or make things up.\n"
            "• The material may be outdated; the dates show how old a fact is.\n"
            "• I can't handle personal cases and don't know other municipalities' councils.\n"
            "• I don't store your messages. The conversation is kept briefly in memory so "
            "follow-up questions work (/new forgets it).\n"
            "• If you vote 👍/👎, the question without personal data and names, the cited "
            "sources, your vote and any reason are kept for {days} days to improve the answers.\n"
            "• If I cannot answer, the question is kept the same way for {days} days, so the "
            "Council's staff can see what the material is missing.\n"
            '• Answers marked "reviewed" were written and reviewed by the Council\'s '
            "secretariat, with the date."
        ),
    },
    "help_admin": {
        "da": (
            "<b>For Rådets medarbejdere</b>\n"
            "/status – vidensbasen, svar og feedback\n"
            "/opdater – læs knowledge/ igen\n"
            "/rapport – hvad botten ikke kan svare på, 👎 med grunde og brug af de gennemgåede "
            "svar (graf og resumé)\n"
            "Send et dokument (PDF, HTML, .md, .txt, højst 20 MB; billedteksten bliver titlen), "
            "så viser jeg, hvad det indeholder, og tilføjer det, når du trykker Tilføj.\n"
            "/tilfoej &lt;adresse&gt; – tilføj en webside som kilde\n"
            "/fjern – fjern et uploadet dokument eller en tilføjet webside"
        ),
        "en": (
            "<b>For the Council's staff</b>\n"
            "/status – the knowledge base, answers and feedback\n"
            "/refresh – read knowledge/ again\n"
            "/report – what the bot cannot answer, 👎 with reasons and use of the reviewed "
            "answers (chart and summary)\n"
            "Send a document (PDF, HTML, .md, .txt, at most 20 MB; the caption becomes its title) "
            "and I show what it holds and add it when you press Add.\n"
            "/add &lt;address&gt; – add a web page as a source\n"
            "/remove – remove an uploaded document or an added web page"
        ),
    },
    "sources": {
        "da": "<b>Kilder</b> (senest opdateret {refreshed}):",
        "en": "<b>Sources</b> (last refreshed {refreshed}):",
    },
    "idea_question": {
        "da": "Hvordan kan man komme med en idé til Rådet, og hvad skal en god idé leve op til?",
        "en": "How can an organisation pitch an idea to the council?",
    },
    "reset": {
        "da": "Samtalen er glemt. Spørg løs!",
        "en": "The conversation is forgotten. Ask away!",
    },
    "rate_limited": {
        "da": "Du har stillet mange spørgsmål på kort tid. Vent et øjeblik, og prøv så igen.",
        "en": "You've asked a lot of questions in a short time. Please wait a moment and try again.",
    },
    "error": {
        "da": "Beklager, noget gik galt hos mig. Prøv igen om lidt.",
        "en": "Sorry, something went wrong on my side. Please try again shortly.",
    },
    "thanks": {"da": "✓ Tak for din feedback", "en": "✓ Thanks for your feedback"},
    "thanks_toast": {"da": "Tak!", "en": "Thanks!"},
    "suggestion_gone": {
        "da": "Det godkendte svar er ved at blive gennemgået igen. Stil gerne dit spørgsmål "
        "igen, så svarer jeg ud fra Rådets materiale.",
        "en": "That reviewed answer is being checked again. Please ask your question again, "
        "and I will answer from the Council's material.",
    },
    "why_toast": {"da": "Tak! Hvad var galt?", "en": "Thanks! What was wrong?"},
    "reason_w": {"da": "Forkert svar", "en": "Wrong answer"},
    "reason_m": {"da": "Der mangler noget", "en": "Something is missing"},
    "reason_u": {"da": "Forstod ikke spørgsmålet", "en": "Didn't understand the question"},
    "reason_o": {"da": "Andet", "en": "Other"},
    "admin_only": {
        "da": "Den kommando er kun for Rådets medarbejdere.",
        "en": "That command is for the Council's staff only.",
    },
    "refresh_started": {
        "da": "Opdaterer vidensbasen fra knowledge/ … Jeg svarer videre imens.",
        "en": "Refreshing the knowledge base from knowledge/ … I keep answering meanwhile.",
    },
    "refresh_busy": {
        "da": "En opdatering kører allerede.",
        "en": "A refresh is already running.",
    },
    "upload_not_allowed": {
        "da": "Dokumenter kan kun tilføjes af Rådets medarbejdere, i en privat chat med mig.",
        "en": "Only the Council's staff can add documents, in a private chat with me.",
    },
    "upload_unsupported": {
        "da": "{name}: den filtype kan jeg ikke læse. Send PDF, HTML, Markdown (.md) eller "
        "tekst (.txt).",
        "en": "{name}: I can't read that file type. Send PDF, HTML, Markdown (.md) or text (.txt).",
    },
    "upload_too_big": {
        "da": "{name} er over 20 MB, som er grænsen for filer, jeg kan hente fra Telegram. Del "
        "den op, eller læg den i knowledge/ på serveren.",
        "en": "{name} is over 20 MB, the limit for files I can fetch from Telegram. Split it, or "
        "put it in knowledge/ on the server.",
    },
    "upload_download_failed": {
        "da": "Jeg kunne ikke hente {name} fra Telegram. Prøv at sende den igen.",
        "en": "I couldn't fetch {name} from Telegram. Please send it again.",
    },
    "upload_broken": {
        "da": "{name} kan ikke bruges: {reason}. Intet er ændret.",
        "en": "{name} can't be used: {reason}. Nothing was changed.",
    },
    "upload_found": {
        "da": "<b>{name}</b>\nTitel: {title}\nDato: {date}\nIndhold: {parts}, sprog {language_name}, "
        "{units} citerbare enheder.\nSkal jeg tilføje den til vidensbasen?",
        "en": "<b>{name}</b>\nTitle: {title}\nDate: {date}\nContent: {parts}, language "
        "{language_name}, {units} quotable units.\nShall I add it to the knowledge base?",
    },
    "upload_replaces": {
        "da": "Et dokument med samme navn findes; det bliver erstattet.",
        "en": "A document with this name exists; it will be replaced.",
    },
    "add": {"da": "Tilføj", "en": "Add"},
    "upload": {"da": "uploadet", "en": "uploaded"},
    "web": {"da": "webside", "en": "web page"},
    "cancel": {"da": "Annullér", "en": "Cancel"},
    "upload_expired": {
        "da": "Den upload er ikke længere aktiv. Send filen igen.",
        "en": "That upload is no longer pending. Please send the file again.",
    },
    "upload_cancelled": {
        "da": "Annulleret: {name} er ikke tilføjet.",
        "en": "Cancelled: {name} was not added.",
    },
    "upload_done": {
        "da": "{name} er tilføjet, og jeg svarer ud fra den nu.\n{summary}",
        "en": "{name} is added, and I answer from it now.\n{summary}",
    },
    "change_waits": {
        "da": "En anden ændring kører; din venter på den.",
        "en": "Another change is running; yours waits for it.",
    },
    "change_failed": {"da": "Ændringen fejlede: {error}", "en": "The change failed: {error}"},
    "add_usage": {
        "da": "Skriv adressen efter kommandoen, fx <code>/tilfoej https://aarhus.dk/side</code>.",
        "en": "Put the address after the command, e.g. <code>/add https://aarhus.dk/page</code>.",
    },
    "add_exists": {"da": "{url} er allerede en kilde.", "en": "{url} is already a source."},
    "add_started": {
        "da": "Henter {url} … Jeg svarer videre imens.",
        "en": "Fetching {url} … I keep answering meanwhile.",
    },
    "add_done": {
        "da": "{name} er tilføjet som kilde, og jeg svarer ud fra den nu.\n{summary}",
        "en": "{name} is added as a source, and I answer from it now.\n{summary}",
    },
    "add_failed": {
        "da": "{url} kunne ikke hentes: {reason}. Den er ikke tilføjet.",
        "en": "{url} could not be fetched: {reason}. It was not added.",
    },
    "remove_nothing": {
        "da": "Der er ingen uploadede dokumenter eller tilføjede websider at fjerne. Filerne i knowledge/ kan kun "
        "fjernes på serveren.",
        "en": "There are no uploaded documents or added web pages to remove. The files in knowledge/ can only be "
        "removed on the server.",
    },
    "remove_choose": {
        "da": "Hvilket uploadet dokument skal fjernes? (Filerne i knowledge/ følger med botten "
        "og kan kun fjernes på serveren.)",
        "en": "Which uploaded document shall I remove? (The files in knowledge/ ship with the "
        "bot and can only be removed on the server.)",
    },
    "remove_confirm": {
        "da": "Fjern {name} fra vidensbasen?",
        "en": "Remove {name} from the knowledge base?",
    },
    "remove_yes": {"da": "Ja, fjern", "en": "Yes, remove"},
    "remove_cancelled": {"da": "{name} er ikke fjernet.", "en": "{name} was not removed."},
    "remove_gone": {
        "da": "Det dokument findes ikke længere.",
        "en": "That document no longer exists.",
    },
    "remove_done": {
        "da": "{name} er fjernet, og jeg svarer ikke længere ud fra den.\n{summary}",
        "en": "{name} is removed, and I no longer answer from it.\n{summary}",
    },
    "refresh_done": {"da": "Opdatering færdig:\n{summary}", "en": "Refresh finished:\n{summary}"},
    "refresh_failed": {"da": "Opdateringen fejlede: {error}", "en": "The refresh failed: {error}"},
}

COMMANDS = {
    "da": [
        ("start", "Velkomst og hvad jeg kan"),
        ("hjaelp", "Hjælp og kommandoer"),
        ("kilder", "Kilderne med datoer"),
        ("ide", "Sådan kommer du med en idé"),
        ("om", "Om botten og privatliv"),
        ("ny", "Glem samtalen"),
    ],
    "en": [
        ("start", "Welcome and what I can do"),
        ("help", "Help and commands"),
        ("sources", "The sources with dates"),
        ("idea", "How to pitch an idea"),
        ("about", "About the bot and privacy"),
        ("new", "Forget the conversation"),
    ],
}


def t(language: str, key: str, **values: object) -> str:
    """Text `key` in `language` (Danish when unknown)."""
    template = TEXTS[key].get(language) or TEXTS[key]["da"]
    return template.format(**values) if values else template

"""Language identification restricted to Danish and English (py3langid); unclear means Danish."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Literal

Language = Literal["da", "en"]
_MIN_CONFIDENCE = 0.75
_loading = threading.Lock()


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(["da", "en"])
    return identifier


def preload() -> threading.Thread:
    """Load the model in a background thread (it takes about a second) and return the thread."""

    def load() -> None:
        with _loading:
            _identifier()

    thread = threading.Thread(target=load, name="langid-preload", daemon=True)
    thread.start()
    return thread


def detect(text: str) -> Language:
    """'en' only when the identifier is confident; everything else is answered in Danish."""
    if not any(ch.isalpha() for ch in text):
        return "da"
    # Names ("Steffen Rasmussen", "Aarhus") say nothing about the asker's language.
    words = text.split()
    plain = " ".join(w for i, w in enumerate(words) if i == 0 or not w[:1].isupper())
    sample = plain if any(ch.isalpha() for ch in plain) else text
    with _loading:
        language, confidence = _identifier().classify(sample)
    return "en" if language == "en" and confidence >= _MIN_CONFIDENCE else "da"

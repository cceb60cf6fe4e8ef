"""What the index holds: documents, chunks, embedder and last refresh."""

from __future__ import annotations

from collections import Counter

from bot.answer.model import Params
from bot.config import Settings
from bot.errors import ConfigError
from bot.store import KnowledgeStore


def index_status(
    settings: Settings, store: KnowledgeStore | None = None, params: Params | None = None
) -> dict:
    """A summary of the index suitable for printing or JSON.

    `params`: the answer parameters in use (the bot passes its own; by default the shipped file
    is read), for which documents `make train` saw.
    """
    store = store or KnowledgeStore.open(settings)
    meta = store.info()
    # Parts (the items of a whole list, for shorter quotes) are not units of their own.
    chunks = [c for c in store.all_chunks() if c.metadata.get("form") != "part"]
    per_doc = Counter(c.metadata["doc_id"] for c in chunks)
    first = {c.metadata["doc_id"]: c.metadata for c in chunks}
    params = params or _shipped_params()
    items = [
        {
            "doc_id": doc_id,
            "title": first[doc_id].get("title", ""),
            "source_date": first[doc_id].get("source_date", ""),
            "source_url": first[doc_id].get("source_url", ""),
            "chunks": count,
            # Whether `make train` saw this version (see `Params.intent_for`).
            "fitted": params is None or params.knows(first[doc_id].get("doc_hash", "")),
        }
        for doc_id, count in sorted(per_doc.items())
    ]
    curated = store.curated_answers()
    entries = {m.get("entry") for m in curated.metadatas().values()} if curated.exists() else set()
    return {
        "documents": len(per_doc),
        "curated_answers": len(entries),
        "chunks": len(chunks),
        "embedding_backend": meta.get("embedding_backend"),
        "embedding_model": meta.get("embedding_model"),
        "embedding_dim": meta.get("embedding_dim"),
        "last_refresh": meta.get("last_refresh"),
        # Indexes from before this marker existed were complete when they were written.
        "build": meta.get("build") or ("complete" if meta.get("last_refresh") else "empty"),
        "items": items,
    }


def _shipped_params() -> Params | None:
    """The shipped answer parameters (None when the file is missing or unreadable)."""
    try:
        return Params.load()
    except ConfigError:
        return None

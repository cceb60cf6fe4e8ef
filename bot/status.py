"""What the index holds: documents, chunks, embedder and last refresh."""

from __future__ import annotations

from collections import Counter

from bot.answer.model import HASH_PREFIX, Params
from bot.config import Settings
from bot.errors import ConfigError
from bot.store import KnowledgeStore


def index_status(settings: Settings, store: KnowledgeStore | None = None) -> dict:
    """A summary of the index suitable for printing or JSON."""
    store = store or KnowledgeStore.open(settings)
    meta = store.info()
    # Parts (the items of a whole list, for shorter quotes) are not units of their own.
    chunks = [c for c in store.all_chunks() if c.metadata.get("form") != "part"]
    per_doc = Counter(c.metadata["doc_id"] for c in chunks)
    first = {c.metadata["doc_id"]: c.metadata for c in chunks}
    fitted = _fitted_on()
    items = [
        {
            "doc_id": doc_id,
            "title": first[doc_id].get("title", ""),
            "source_date": first[doc_id].get("source_date", ""),
            "source_url": first[doc_id].get("source_url", ""),
            "chunks": count,
            # Whether `make train` saw this version (see `Params.intent_for`).
            "fitted": fitted is None or first[doc_id].get("doc_hash", "")[:HASH_PREFIX] in fitted,
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


def _fitted_on() -> frozenset[str] | None:
    """The document versions the shipped answer parameters were fitted on (None: unknown)."""
    try:
        return Params.load().fitted_on
    except ConfigError:
        return None

"""LlamaIndex adapter for our embedders, so LlamaIndex components can use the same model.

Kept apart from `bot.embedding` because importing llama_index costs about two seconds, and the
answering path never needs it.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from bot.embedding import Embedder


class LlamaIndexEmbedding(BaseEmbedding):
    """A LlamaIndex `BaseEmbedding` backed by one of our embedders."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=f"{embedder.backend}/{embedder.model}", **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_passages([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_passages(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

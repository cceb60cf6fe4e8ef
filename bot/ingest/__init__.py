"""Staff ingest: load knowledge files, split them, embed them and keep Chroma in step."""

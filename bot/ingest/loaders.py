"""Loaders for the knowledge folder: Markdown (YAML front matter), text, HTML and PDF.

Markdown files carry their metadata in front matter; the others take it from
`knowledge/sources.csv`, falling back to what the file itself says (HTML title and date, PDF
metadata). A file that cannot be read raises `LoaderError` with a reason a person understands.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.errors import LoaderError

log = logging.getLogger(__name__)

MANIFEST = "sources.csv"
SUPPORTED = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
KINDS = {"page", "project", "report", "news", "background"}
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


@dataclass
class SourceDocument:
    """A loaded document: its id, metadata and text parts (one per PDF page, else one)."""

    doc_id: str
    metadata: dict[str, Any]
    parts: list[tuple[str, int | None]]
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(text for text, _ in self.parts)

    def digest(self, extra: list | None = None) -> str:
        """A hash of the text parts and stable metadata (with `extra` settings in the header)."""
        stable = {k: self.metadata[k] for k in sorted(self.metadata)}
        header = stable if extra is None else [stable, *extra]
        digest = hashlib.sha256()
        digest.update(json.dumps(header, ensure_ascii=False, sort_keys=True).encode())
        for text, page in self.parts:
            digest.update(f"\x00{page}\x00".encode())
            digest.update(text.encode())
        return digest.hexdigest()[:16]


MANIFEST_COLUMNS = ("file", "title", "source_url", "source_date", "kind", "language")


def read_manifest(
    knowledge_dir: Path, warnings: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Rows of `sources.csv` keyed by file name (empty if there is none).

    A line that is not valid UTF-8 loses that row only (named in warnings); an unknown or
    missing column in the header is named too, since its values would be silently ignored.
    """
    warnings = warnings if warnings is not None else []
    path = knowledge_dir / MANIFEST
    if not path.exists():
        return {}
    lines: list[str] = []
    for number, raw in enumerate(path.read_bytes().splitlines(keepends=True), 1):
        try:
            lines.append(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            warnings.append(f"{MANIFEST} line {number}: not valid UTF-8; that row is ignored")
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in MANIFEST_COLUMNS]
    if unknown or "file" not in header:
        warnings.append(
            f"{MANIFEST}: unknown column(s) {', '.join(unknown) or '(none)'}"
            f"{'' if 'file' in header else ', and no file column'}; expected "
            f"{', '.join(MANIFEST_COLUMNS)}"
        )
    rows: dict[str, dict[str, str]] = {}
    for row in reader:
        name = (row.get("file") or "").strip()
        if name:
            rows[name] = {k.strip(): v for k, v in row.items() if isinstance(k, str)}
    return rows


def iso_date(value: Any) -> str | None:
    """An ISO date string from a date, datetime or string; None when it is not a date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        for candidate in (text, text[:10]):
            try:
                return date.fromisoformat(candidate).isoformat()
            except ValueError:
                continue
    return None


def detect_language(text: str) -> str:
    """'da' or 'en' for a document's text; Danish when unsure."""
    from bot.language import detect

    return detect(text)


def _decode(raw: bytes, name: str, warnings: list[str]) -> str:
    if not raw.strip():
        raise LoaderError(f"{name}: the file is empty")
    if _looks_binary(raw[:8192]):
        raise LoaderError(
            f"{name}: binary content, not text (is it really a {Path(name).suffix} file?)"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{name}: not valid UTF-8; read as Windows-1252 (check æ, ø, å)")
        return raw.decode("cp1252", errors="replace")


def _looks_binary(head: bytes) -> bool:
    """NUL bytes, or more than a tenth control bytes: an image or archive under a text name."""
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > len(head) / 10


def _load_markdown(path: Path, warnings: list[str]) -> tuple[dict[str, Any], str]:
    text = _decode(path.read_bytes(), path.name, warnings)
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        front = yaml.load(match.group(1), Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as exc:
        warnings.append(f"{path.name}: front matter is not valid YAML ({exc.__class__.__name__})")
        front = {}
    if not isinstance(front, dict):
        warnings.append(f"{path.name}: front matter is not a mapping; ignored")
        front = {}
    return front, text[match.end() :]


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: a date stays text, so "2024-13-45" is a warning for
    that field (checked by `iso_date`), not an exception that stops the ingest."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_text(path: Path, warnings: list[str]) -> tuple[dict[str, Any], str]:
    return {}, _decode(path.read_bytes(), path.name, warnings)


def _load_html(path: Path, warnings: list[str]) -> tuple[dict[str, Any], str]:

    html = _decode(path.read_bytes(), path.name, warnings)
    return html_to_text(html, path.name)


def html_to_text(html: str, name: str) -> tuple[dict[str, Any], str]:
    """Main content of an HTML page as Markdown-ish text, plus its title and date."""
    import trafilatura

    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        favor_recall=True,
    )
    # Trafilatura falls back to the whole page; menus and footers have no real sentence.
    if not text or not any(len(line.split()) >= 5 for line in text.splitlines()):
        raise LoaderError(f"{name}: no main content found in the HTML page")
    meta: dict[str, Any] = {}
    found = trafilatura.extract_metadata(html)
    if found is not None:
        if found.title:
            meta["title"] = found.title
        if found.date:
            meta["source_date"] = found.date
        if found.url:
            meta["source_url"] = found.url
    return meta, text


def _load_pdf(path: Path, warnings: list[str]) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    return pdf_to_pages(path.read_bytes(), path.name, warnings)


def pdf_to_pages(
    raw: bytes, name: str, warnings: list[str]
) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Text per page (1-based page numbers) and the PDF's own title and date."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not raw.strip():
        raise LoaderError(f"{name}: the file is empty")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(f"{name}: the PDF is password-protected")
        pages = [(page.extract_text() or "", number) for number, page in enumerate(reader.pages, 1)]
        info = reader.metadata
    except LoaderError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoaderError(f"{name}: the PDF cannot be read ({exc.__class__.__name__})") from exc
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        if "crypt" in str(exc).lower() or "password" in str(exc).lower():
            raise LoaderError(f"{name}: the PDF is password-protected") from exc
        raise LoaderError(f"{name}: the PDF cannot be read ({exc.__class__.__name__})") from exc
    pages = [(text.strip(), number) for text, number in pages if text.strip()]
    if not pages:
        raise LoaderError(f"{name}: the PDF has no extractable text (a scan needs OCR first)")
    meta: dict[str, Any] = {}
    if info is not None:
        if info.title:
            meta["title"] = str(info.title)
        created = getattr(info, "creation_date", None)
        if created:
            meta["source_date"] = created
    return meta, pages


def load_document(
    path: Path,
    knowledge_dir: Path,
    manifest: dict[str, dict[str, str]],
    max_bytes: int | None = None,
    id_prefix: str = "",
) -> SourceDocument:
    """Load one file; raises LoaderError with a reason when it cannot be used.

    The document id is the path relative to `knowledge_dir` (the folder the file was found
    in), after `id_prefix` ("upload:" for documents staff sent the bot).
    """
    suffix = path.suffix.lower()
    warnings: list[str] = []
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise LoaderError(
            f"{path.name}: {size / 1e6:.1f} MB, more than the limit of {max_bytes / 1e6:.1f} MB "
            "(MAX_DOCUMENT_BYTES)"
        )
    try:
        if suffix in (".md", ".markdown"):
            own, text = _load_markdown(path, warnings)
            parts: list[tuple[str, int | None]] = [(text, None)]
        elif suffix == ".txt":
            own, text = _load_text(path, warnings)
            parts = [(text, None)]
        elif suffix in (".html", ".htm"):
            own, text = _load_html(path, warnings)
            parts = [(text, None)]
        elif suffix == ".pdf":
            own, pages = _load_pdf(path, warnings)
            parts = list(pages)
        else:
            raise LoaderError(f"{path.name}: unsupported file type {suffix or '(none)'}")
    except PermissionError as exc:
        raise LoaderError(f"{path.name}: the file cannot be read (permission denied)") from exc
    if not any(text.strip() for text, _ in parts):
        raise LoaderError(f"{path.name}: the document has no text")
    doc_id = id_prefix + path.resolve().relative_to(knowledge_dir.resolve()).as_posix()
    metadata = _metadata(path, own, manifest.get(path.name, {}), parts, warnings)
    return SourceDocument(doc_id=doc_id, metadata=metadata, parts=parts, warnings=warnings)


def web_document(
    url: str,
    name: str,
    own: dict[str, Any],
    row: dict[str, str],
    parts: list[tuple[str, int | None]],
    warnings: list[str],
) -> SourceDocument:
    """A fetched page as a document keyed by its URL; the manifest row wins over the page."""
    if not any(text.strip() for text, _ in parts):
        raise LoaderError(f"{name}: the document has no text")
    metadata = _metadata(Path(name), own, row, parts, warnings)
    metadata["source_url"] = url
    return SourceDocument(doc_id=url, metadata=metadata, parts=parts, warnings=warnings)


def _metadata(
    path: Path,
    own: dict[str, Any],
    row: dict[str, str],
    parts: list[tuple[str, int | None]],
    warnings: list[str],
) -> dict[str, Any]:
    """Merge front matter / file metadata with the manifest row; validate the date."""
    is_markdown = path.suffix.lower() in (".md", ".markdown")
    # Front matter is authoritative for Markdown; for other files the manifest is.
    first, second = (own, row) if is_markdown else (row, own)

    def pick(key: str) -> Any:
        for source in (first, second):
            value = source.get(key)
            if value not in (None, ""):
                return value
        return None

    date_value = None
    for source in (first, second):
        raw = source.get("source_date")
        if raw in (None, ""):
            continue
        date_value = iso_date(raw)
        if date_value:
            break
        warnings.append(f"{path.name}: source_date {raw!r} is not a date (YYYY-MM-DD); ignored")
    kind = str(pick("kind") or "background")
    if kind not in KINDS:
        warnings.append(f"{path.name}: unknown kind {kind!r}; using 'background'")
        kind = "background"
    language = str(pick("language") or "")
    if language not in ("da", "en"):
        language = detect_language(" ".join(text for text, _ in parts)[:2000])
    return {
        "file": path.name,
        "title": str(pick("title") or _title_from_text(parts) or path.stem),
        "source_url": str(pick("source_url") or ""),
        "source_date": date_value or "",
        "kind": kind,
        "language": language,
    }


def _title_from_text(parts: list[tuple[str, int | None]]) -> str | None:
    for line in parts[0][0].splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return None


def discover(paths: list[Path], knowledge_dir: Path) -> tuple[list[Path], list[str]]:
    """Files to ingest under the given paths, and warnings for skipped ones."""
    files: list[Path] = []
    skipped: list[str] = []
    home = knowledge_dir.resolve()
    for root in paths:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in candidates:
            rel = path.relative_to(knowledge_dir) if path.is_relative_to(knowledge_dir) else path
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(f"{rel.as_posix()}: skipped, a broken or looping symlink")
                    continue
                if not target.is_relative_to(home):
                    skipped.append(
                        f"{rel.as_posix()}: skipped, a symlink to outside the knowledge folder"
                    )
                    continue
            if not path.is_file():
                continue
            if any(part.startswith(".") for part in rel.parts) or path.name == MANIFEST:
                continue
            if path.suffix.lower() not in SUPPORTED:
                skipped.append(f"{rel.as_posix()}: skipped, unsupported file type")
                continue
            files.append(path)
    return files, skipped

"""Web sources for `python ingest.py --fetch`: download the URLs listed in `sources.csv`.

A manifest row with an empty `file` column and an http(s) `source_url` is a web source; its
document id is the URL. Downloads go through one httpx client with timeouts, a size limit, a
content-type check, a redirect limit, a politeness delay per host and robots.txt. What a URL
answered last time (ETag, Last-Modified, content hash, how often it was gone) is kept in
`DATA_DIR/fetch-state.json`, so unchanged pages are revalidated with a conditional request
instead of being downloaded and embedded again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

if TYPE_CHECKING:  # httpx is imported when something is fetched (0.2 s a plain refresh saves)
    import httpx

from bot.config import Settings
from bot.errors import LoaderError
from bot.ingest.loaders import (
    MANIFEST,
    SourceDocument,
    html_to_text,
    iso_date,
    pdf_to_pages,
    web_document,
)

log = logging.getLogger(__name__)

STATE_FILE = "fetch-state.json"
# Consecutive 404/410 answers after which a page leaves the index (one could be a hiccup).
GONE_AFTER = 2
GONE_STATUSES = {404, 410}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
ACCEPTED_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/plain": "text",
}
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
_GENERIC_NAMES = {"index.html", "index.htm", "index.php", "default.aspx", "index.aspx"}

Status = Literal["fetched", "not_modified", "failed", "gone"]
Revalidate = Callable[[str, dict[str, Any]], bool]


@dataclass
class FetchOutcome:
    """What one URL answered: a document, 'not modified', a failure or 'gone'."""

    url: str
    status: Status
    document: SourceDocument | None = None
    reason: str = ""
    # The state entry to remember for this URL (None: forget it).
    entry: dict[str, Any] | None = None
    # For 'gone': remove the page from the index now (else it is kept for another try).
    remove: bool = False


@dataclass
class Download:
    """A response after redirects: final URL, status, headers and (for 200) the body."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""
    mime: str = ""
    charset: str | None = None


@dataclass
class _Robots:
    parser: RobotFileParser
    reason: str = ""  # why everything is disallowed (robots.txt unreachable)


def is_web_id(doc_id: str) -> bool:
    """Whether a document id is a URL (a web source) rather than a path in knowledge/."""
    return doc_id.startswith(("http://", "https://"))


def web_sources(knowledge_dir: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Rows of `sources.csv` without a file but with an http(s) URL, keyed by URL."""
    path = knowledge_dir / MANIFEST
    if not path.exists():
        return {}, []
    sources: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        # Line 1 is the header, so the first row is on line 2.
        for line, row in enumerate(csv.DictReader(handle), 2):
            if (row.get("file") or "").strip():
                continue
            url = urldefrag((row.get("source_url") or "").strip()).url
            if not url:
                if any((value or "").strip() for value in row.values() if isinstance(value, str)):
                    warnings.append(f"{MANIFEST} line {line}: no file and no URL; ignored")
                continue
            if not is_web_id(url) or not urlsplit(url).hostname:
                warnings.append(f"{MANIFEST} line {line}: {url!r} is not an http(s) URL; ignored")
                continue
            if url in sources:
                warnings.append(f"{MANIFEST} line {line}: {url} is listed twice; first row used")
                continue
            sources[url] = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
    return sources, warnings


def short_name(url: str) -> str:
    """A short, readable name for a URL: its last path segment (or the host name)."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    # `.../ungifokus/index.html` is better known as "ungifokus".
    if segments and segments[-1].lower() in _GENERIC_NAMES and len(segments) > 1:
        segments.pop()
    name = segments[-1] if segments else (parts.hostname or "page")
    return name[:80]


# -- state file -------------------------------------------------------------------------------


def state_path(settings: Settings) -> Path:
    """Where the per-URL fetch state lives."""
    return settings.data_dir / STATE_FILE


def load_state(path: Path) -> dict[str, dict[str, Any]]:
    """The remembered state per URL; empty (everything fetched afresh) if missing or damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("fetch: %s cannot be read (%s); fetching every URL afresh", path, exc)
        return {}
    urls = data.get("urls") if isinstance(data, dict) else None
    return {k: v for k, v in (urls or {}).items() if isinstance(v, dict)}


def save_state(path: Path, urls: dict[str, dict[str, Any]]) -> None:
    """Write the state atomically: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"version": 1, "urls": urls}, ensure_ascii=False, indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- downloading ------------------------------------------------------------------------------


class Fetcher:
    """One httpx client with the crawler's limits, robots.txt cache and per-host delay."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        import httpx

        self.settings = settings
        self.agent = settings.fetch_user_agent
        read = settings.fetch_read_timeout_seconds
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(
                connect=settings.fetch_connect_timeout_seconds, read=read, write=read, pool=read
            ),
            headers={"User-Agent": self.agent},
            # Redirects are followed by hand so every hop passes robots.txt and the delay.
            follow_redirects=False,
        )
        self._robots: dict[str, _Robots] = {}
        self._last_request: dict[str, float] = {}

    def close(self) -> None:
        self.client.close()

    def download(self, url: str, headers: dict[str, str]) -> Download:
        """GET a URL, following up to fetch_max_redirects redirects; raises LoaderError."""
        seen = {url}
        for _ in range(self.settings.fetch_max_redirects + 1):
            self._check_robots(url)
            with self._stream(url, headers) as response:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    target = urldefrag(urljoin(url, location)).url
                    if not is_web_id(target):
                        raise LoaderError(f"redirected to {target!r}, which is not http(s)")
                    if target in seen:
                        raise LoaderError(f"redirect loop: {url} redirects back to {target}")
                    seen.add(target)
                    url = target
                    continue
                if response.status_code != 200:
                    return Download(url, response.status_code, response.headers)
                mime, kind_ok = _content_type(response)
                if not kind_ok:
                    raise LoaderError(
                        f"unsupported content type {mime or '(none)'}; expected HTML, PDF or "
                        "plain text"
                    )
                body = self._read_limited(response, self.settings.fetch_max_bytes)
                return Download(url, 200, response.headers, body, mime, response.charset_encoding)
        raise LoaderError(f"too many redirects (more than {self.settings.fetch_max_redirects})")

    @contextmanager
    def _stream(self, url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """One polite request, with transport errors turned into readable LoaderErrors."""
        import httpx

        self._wait_turn(url)
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                yield response
        except httpx.TimeoutException as exc:
            phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
            limit = (
                self.settings.fetch_connect_timeout_seconds
                if isinstance(exc, httpx.ConnectTimeout)
                else self.settings.fetch_read_timeout_seconds
            )
            raise LoaderError(f"timed out {phase} after {limit:g} s") from exc
        except httpx.ConnectError as exc:
            raise LoaderError(f"cannot connect to {urlsplit(url).netloc} ({exc})") from exc
        except httpx.HTTPError as exc:
            raise LoaderError(f"network error ({exc.__class__.__name__}: {exc})") from exc
        except httpx.InvalidURL as exc:  # not an HTTPError in httpx
            raise LoaderError(f"invalid URL ({exc})") from exc
        finally:
            self._last_request[_origin(url)] = time.monotonic()

    def _wait_turn(self, url: str) -> None:
        """Sleep until fetch_delay_seconds have passed since the last request to this host."""
        last = self._last_request.get(_origin(url))
        if last is not None:
            pause = self.settings.fetch_delay_seconds - (time.monotonic() - last)
            if pause > 0:
                time.sleep(pause)

    @staticmethod
    def _read_limited(response: httpx.Response, limit: int) -> bytes:
        """The body, streamed; abort as soon as it exceeds the limit (never buffer more)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise LoaderError(f"too large: {_mb(int(declared))} (limit {_mb(limit)})")
        body = bytearray()
        for chunk in response.iter_bytes(chunk_size=64 * 1024):
            body += chunk
            if len(body) > limit:
                raise LoaderError(f"too large: more than {_mb(limit)} (download stopped)")
        return bytes(body)

    def _check_robots(self, url: str) -> None:
        """Raise LoaderError when robots.txt does not let this bot fetch the URL."""
        origin = _origin(url)
        robots = self._robots.get(origin)
        if robots is None:
            robots = self._robots[origin] = self._load_robots(origin)
        if not robots.parser.can_fetch(self.agent, url):
            raise LoaderError(
                robots.reason or f"skipped: {origin}/robots.txt disallows this URL for {self.agent}"
            )

    def _load_robots(self, origin: str) -> _Robots:
        """robots.txt per RFC 9309: 4xx means allowed, unreachable means disallowed."""
        parser = RobotFileParser(f"{origin}/robots.txt")
        try:
            response = self._robots_response(f"{origin}/robots.txt")
        except LoaderError as exc:
            # The host is unreachable: say so (cached, so its other URLs fail fast too).
            parser.disallow_all = True
            return _Robots(parser, str(exc))
        status, text = response
        if status >= 500:
            parser.disallow_all = True
            return _Robots(parser, f"skipped: {origin}/robots.txt answered HTTP {status}")
        parser.parse(text.splitlines() if status == 200 else [])
        return _Robots(parser)

    def _robots_response(self, url: str) -> tuple[int, str]:
        """Status and text of robots.txt (redirects followed, at most ROBOTS_MAX_BYTES)."""
        for _ in range(self.settings.fetch_max_redirects + 1):
            with self._stream(url, {}) as response:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                if response.status_code != 200:
                    return response.status_code, ""
                body = bytearray()
                for chunk in response.iter_bytes(chunk_size=64 * 1024):
                    body += chunk
                    if len(body) >= ROBOTS_MAX_BYTES:
                        break
                return 200, bytes(body[:ROBOTS_MAX_BYTES]).decode("utf-8", errors="replace")
        # Too many redirects for robots.txt counts as "unavailable" (RFC 9309), i.e. allowed.
        return 404, ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _content_type(response: httpx.Response) -> tuple[str, bool]:
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return mime, mime in ACCEPTED_TYPES


# -- turning a download into a document -------------------------------------------------------


def fetch_sources(
    settings: Settings,
    sources: dict[str, dict[str, str]],
    previous: dict[str, dict[str, Any]],
    revalidate: Revalidate,
    *,
    prune: bool = False,
    fetcher: Fetcher | None = None,
) -> list[FetchOutcome]:
    """Fetch every web source; `revalidate(url, entry)` says whether a 304 may be accepted."""
    fetcher = fetcher or Fetcher(settings)
    try:
        return [
            fetch_one(fetcher, url, row, previous.get(url), revalidate, prune=prune)
            for url, row in sources.items()
        ]
    finally:
        fetcher.close()


def fetch_one(
    fetcher: Fetcher,
    url: str,
    row: dict[str, str],
    entry: dict[str, Any] | None,
    revalidate: Revalidate,
    *,
    prune: bool = False,
) -> FetchOutcome:
    """Fetch one URL and say what it answered; never raises for a bad page or network."""
    entry = dict(entry or {})
    now = datetime.now(UTC).isoformat(timespec="seconds")
    # Only ask "changed since?" when the index really holds what the state describes, built
    # from the same manifest row; otherwise a 304 would leave us without what we need.
    conditional = entry.get("row") == _row_key(row) and revalidate(url, entry)
    headers = _conditional_headers(entry) if conditional else {}
    try:
        download = fetcher.download(url, headers)
        if download.status == 304 and conditional:
            entry.update(_validators(download.headers, entry), gone=0, checked=now, status=304)
            log.info("fetch: %s not modified", url)
            return FetchOutcome(url, "not_modified", entry=entry)
        if download.status in GONE_STATUSES:
            return _gone(url, download.status, entry, now, prune)
        if download.status != 200:
            raise LoaderError(f"HTTP {download.status} {_phrase(download.status)}".strip())
        document, content_hash, source_date = _document(url, row, download, entry)
    except LoaderError as exc:
        log.warning("fetch: %s: %s", url, exc)
        # Keep the previous state: its validators describe the version the index still holds.
        return FetchOutcome(url, "failed", reason=str(exc), entry=entry or None)
    fresh = {
        **_validators(download.headers, {}),
        "content_hash": content_hash,
        "source_date": source_date,
        "row": _row_key(row),
        "gone": 0,
        "checked": now,
        "status": 200,
    }
    log.info("fetch: %s fetched (%d bytes)", url, len(download.body))
    return FetchOutcome(url, "fetched", document=document, entry=fresh)


def _row_key(row: dict[str, str]) -> str:
    """The manifest values that shape the document: a change there needs a full fetch."""
    return json.dumps([row.get(k, "") for k in ("title", "source_date", "kind", "language")])


def _conditional_headers(entry: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if entry.get("etag"):
        headers["If-None-Match"] = entry["etag"]
    if entry.get("last_modified"):
        headers["If-Modified-Since"] = entry["last_modified"]
    return headers


def _validators(headers: httpx.Headers, fallback: dict[str, Any]) -> dict[str, Any]:
    return {
        "etag": headers.get("etag") or fallback.get("etag"),
        "last_modified": headers.get("last-modified") or fallback.get("last_modified"),
    }


def _gone(url: str, status: int, entry: dict[str, Any], now: str, prune: bool) -> FetchOutcome:
    """Count a 404/410; the page leaves the index after GONE_AFTER in a row (or with prune)."""
    count = int(entry.get("gone", 0)) + 1
    remove = prune or count >= GONE_AFTER
    runs = f", {count} runs in a row" if count > 1 else ""
    what = "removed from the index" if remove else "kept until the next --fetch confirms it"
    reason = f"the page is gone (HTTP {status}{runs}); {what}"
    log.warning("fetch: %s: %s", url, reason)
    # A removed page has no version in the index, so its validators no longer apply.
    kept = {} if remove else entry
    return FetchOutcome(
        url,
        "gone",
        reason=reason,
        entry={**kept, "gone": count, "checked": now, "status": status},
        remove=remove,
    )


def _document(
    url: str, row: dict[str, str], download: Download, entry: dict[str, Any]
) -> tuple[SourceDocument, str, str]:
    """The SourceDocument for a downloaded body, its content hash and the date it got."""
    name = short_name(url)
    warnings: list[str] = []
    kind = ACCEPTED_TYPES[download.mime]
    if kind == "pdf":
        own, pages = pdf_to_pages(download.body, name, warnings)
        parts: list[tuple[str, int | None]] = list(pages)
        own.setdefault("kind", "report")
    else:
        text = _decode(download.body, download.charset, name, warnings)
        if kind == "html":
            own, text = html_to_text(text, name)
        else:
            own = {}
        parts = [(text, None)]
        own.setdefault("kind", "page")
    # The page's own source_url (a canonical link) must not replace the URL we fetched.
    own.pop("source_url", None)
    content_hash = hashlib.sha256(download.body).hexdigest()[:16]
    own["source_date"] = _source_date(own.get("source_date"), download, entry, content_hash)
    document = web_document(url, name, own, row, parts, warnings)
    return document, content_hash, document.metadata["source_date"]


def _source_date(own: Any, download: Download, entry: dict[str, Any], content_hash: str) -> str:
    """The page's own date, else Last-Modified, else the date this content was first seen."""
    found = iso_date(own) if own else None
    if found:
        return found
    try:
        modified = parsedate_to_datetime(download.headers.get("last-modified", ""))
        return modified.date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    # Reusing the earlier date for unchanged content keeps the document hash stable, so a
    # page without a date of its own is not re-embedded every day.
    if entry.get("content_hash") == content_hash and entry.get("source_date"):
        return str(entry["source_date"])
    return datetime.now(UTC).date().isoformat()


def _decode(raw: bytes, charset: str | None, name: str, warnings: list[str]) -> str:
    if not raw.strip():
        raise LoaderError(f"{name}: the page is empty")
    for encoding in (charset, "utf-8-sig"):
        if not encoding:
            continue
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    warnings.append(f"{name}: not valid UTF-8; read as Windows-1252 (check æ, ø, å)")
    return raw.decode("cp1252", errors="replace")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""

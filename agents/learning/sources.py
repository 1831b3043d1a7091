"""Trusted sources: fetch documents that cannot be turned on the host (issue #17).

A source is read only when its URL is one of the trusted set, and then only if it is:

- ``http(s)://…``: every hop (the first request and each redirect, at most
  :attr:`SourcePolicy.max_redirects`, followed by hand) is checked before anything connects —
  scheme, no credentials in the URL, and every address the host resolves to
  (:mod:`agents.learning.netguard`: no loopback, private, link-local/metadata, multicast or
  reserved address unless allow-listed). The connection goes to the checked address (the URL's
  host is replaced by it, ``Host`` and TLS SNI keep the name, certificates are verified
  against it), so a second DNS answer cannot steer it elsewhere (DNS rebinding). The response
  must be ``200`` with an allowed content type, and is capped at ``max_bytes`` while it
  streams. HTML becomes text through trafilatura (``trafilatura.extract``): raw HTML never
  reaches a prompt.
- ``file:///…``: a regular file under one of the configured documentation roots (after
  resolving symlinks), never under ``/proc``, ``/sys`` or ``/dev``; size-capped.
- ``package:NAME``: an installed distribution's long description (its README), the demo's
  offline corpus (the default sources of ``lvlup run``).
- ``pydoc:MODULE``: the docstrings an installed module carries, read from its source with
  :mod:`ast`, never imported (:mod:`agents.learning.docstrings`) — bandit's rule plugins,
  the standard library's security- and performance-relevant modules.

Anything else (``ftp:``, ``gopher:``, a bare path, ``file://host/…``) is refused. A source that
fails raises :class:`SourceFailed` with a one-line reason; the cycle records it as an error
event and carries on.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import trafilatura

from agents.learning.docstrings import MODULE_NAME, module_doc_text
from agents.learning.netguard import (
    AddressRefused,
    AllowedEndpoint,
    Resolver,
    resolve_host,
    system_resolver,
)

__all__ = [
    "Document",
    "SourceFailed",
    "SourcePolicy",
    "check_source_url",
    "fetch_document",
    "html_to_text",
]

MAX_BYTES = 512 * 1024
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown",
               "text/x-markdown", "text/x-rst")
_NEVER_READ = (Path("/proc"), Path("/sys"), Path("/dev"))
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class SourceFailed(RuntimeError):
    """A trusted source could not be read (refused, timeout, HTTP error, too large, missing)."""


@dataclass(frozen=True)
class Document:
    """A fetched document: where from, a title, and its text (never raw HTML)."""

    url: str
    title: str
    text: str


@dataclass(frozen=True)
class SourcePolicy:
    """What a fetch may do; built from ``LearningSettings`` by the worker.

    ``timeout_s``: per request (connect, each read), seconds. ``max_bytes``: cap on a body or
    file. ``max_redirects``: hops followed after the first request. ``allowed``: endpoints
    exempt from the address check (:func:`agents.learning.netguard.parse_allowed`).
    ``doc_roots``: directories ``file:`` sources may be under (none: ``file:`` is refused).
    ``content_types``: media types accepted from http(s). ``resolver``: host → addresses.
    """

    timeout_s: float = 5.0
    max_bytes: int = MAX_BYTES
    max_redirects: int = 5
    allowed: tuple[AllowedEndpoint, ...] = ()
    doc_roots: tuple[Path, ...] = ()
    content_types: frozenset[str] = field(default_factory=lambda: frozenset(_TEXT_TYPES))
    resolver: Resolver = system_resolver


async def fetch_document(url: str, trusted: set[str], *, policy: SourcePolicy | None = None,
                         client: httpx.AsyncClient | None = None) -> Document:
    """Fetch ``url`` if it is one of ``trusted`` and the ``policy`` allows it (module doc).

    ``client``: an httpx client to send through (tests); by default one is made per fetch,
    without redirects or proxies from the environment. Raises :class:`SourceFailed`.
    """
    policy = policy or SourcePolicy()
    if url not in trusted:
        raise SourceFailed(f"{url} is not a trusted source")
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return await _http(url, policy, client)
    if scheme == "package":
        parsed = urlsplit(url)
        return _package(parsed.path or parsed.netloc, policy.max_bytes)
    if scheme == "file":
        return _file(url, policy)
    if scheme == "pydoc":
        name = urlsplit(url).path
        try:
            text = module_doc_text(name, policy.max_bytes)
        except (LookupError, ValueError) as exc:
            raise SourceFailed(f"{url}: {exc}") from exc
        return Document(url, f"{name} (docstrings)", text)
    raise SourceFailed(f"{url}: only http(s), file (under documentation roots), package and "
                       "pydoc sources are read")


def check_source_url(url: str) -> str:
    """``url`` if it can name a trusted source at all, else ``ValueError`` with the reason:
    ``http(s)://host/…`` without credentials, ``file:///absolute/path`` (not under ``/proc``,
    ``/sys``, ``/dev``) or ``package:NAME``. Static only: addresses, documentation roots and
    redirects are checked when the source is fetched (:func:`fetch_document`)."""
    parsed = urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        if not parsed.hostname or parsed.username is not None or parsed.password is not None:
            raise ValueError(f"{url!r}: an http(s) source needs a host and no credentials")
    elif scheme == "file":
        path = Path(unquote(parsed.path))
        if (parsed.netloc not in ("", "localhost") or not path.is_absolute()
                or any(path.is_relative_to(bad) for bad in _NEVER_READ)):
            raise ValueError(f"{url!r}: a file source is an absolute local path outside "
                             "/proc, /sys and /dev")
    elif scheme == "package":
        if not _PACKAGE.fullmatch(parsed.path or parsed.netloc):
            raise ValueError(f"{url!r}: a package source names one installed distribution")
    elif scheme == "pydoc":
        if not MODULE_NAME.fullmatch(parsed.path):
            raise ValueError(f"{url!r}: a pydoc source names one module (dotted name)")
    else:
        raise ValueError(f"{url!r}: only http(s), file, package and pydoc sources are allowed")
    return url


def html_to_text(html: str, url: str) -> str:
    """The readable text of an HTML page (trafilatura's main-content extraction: no markup,
    scripts, navigation or comments). Raises :class:`SourceFailed` when nothing readable is
    left."""
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True,
                               output_format="txt")
    if not text or not text.strip():
        raise SourceFailed(f"{url}: no readable text in the page")
    return str(text)


async def _http(url: str, policy: SourcePolicy, client: httpx.AsyncClient | None) -> Document:
    own = client is None
    http = client or httpx.AsyncClient(timeout=policy.timeout_s, follow_redirects=False,
                                       trust_env=False)
    try:
        current = url
        for _hop in range(policy.max_redirects + 1):
            request = await _pinned_request(http, current, policy)
            resp = await http.send(request, stream=True)
            try:
                if resp.status_code in _REDIRECTS:
                    location = resp.headers.get("location")
                    if not location:
                        raise SourceFailed(f"{current}: redirect without a Location")
                    current = urljoin(current, location)
                    continue
                if resp.status_code != 200:
                    raise SourceFailed(f"{current}: HTTP {resp.status_code}")
                media, charset = _content_type(resp.headers.get("content-type", ""))
                if media not in policy.content_types:
                    raise SourceFailed(f"{current}: content type {media or 'missing'!r} is not"
                                       " text")
                body = await _capped_body(resp, current, policy.max_bytes)
            finally:
                await resp.aclose()
            text = body.decode(charset or "utf-8", "replace")
            if media in _HTML:
                text = html_to_text(text, current)
            return Document(url, current.rsplit("/", 1)[-1] or current, text)
        raise SourceFailed(f"{url}: more than {policy.max_redirects} redirects")
    except httpx.TimeoutException as exc:
        raise SourceFailed(f"{url}: timed out after {policy.timeout_s} s") from exc
    except httpx.HTTPError as exc:
        raise SourceFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            await http.aclose()


async def _pinned_request(http: httpx.AsyncClient, url: str,
                          policy: SourcePolicy) -> httpx.Request:
    """The request for one hop, to the checked address (module doc); refuses before any
    connection is made."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SourceFailed(f"{url}: invalid URL ({exc})") from exc
    if target.scheme not in ("http", "https"):
        raise SourceFailed(f"{url}: only http(s) is followed")
    if target.userinfo:
        raise SourceFailed(f"{url}: credentials in the URL are refused")
    host = target.host
    if not host:
        raise SourceFailed(f"{url}: no host")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        address = await resolve_host(host, port, policy.allowed, resolver=policy.resolver)
    except AddressRefused as exc:
        raise SourceFailed(f"{url}: refused: {exc}") from exc
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if target.port is None else f"{bracketed}:{target.port}"
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return http.build_request("GET", target.copy_with(host=str(address)),
                              headers={"Host": host_header, "Accept": ", ".join(_TEXT_TYPES)},
                              extensions=extensions, timeout=policy.timeout_s)


def _content_type(header: str) -> tuple[str, str | None]:
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"').strip()
    if charset:
        try:
            "".encode(charset)
        except LookupError:
            charset = None
    return media.strip().lower(), charset


async def _capped_body(resp: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise SourceFailed(f"{url}: larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise SourceFailed(f"{url}: larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _file(url: str, policy: SourcePolicy) -> Document:
    parsed = urlsplit(url)
    if parsed.netloc not in ("", "localhost"):
        raise SourceFailed(f"{url}: file URLs name no host")
    try:
        path = Path(unquote(parsed.path)).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise SourceFailed(f"{url}: not found") from exc
    roots = [root.resolve() for root in policy.doc_roots]
    if (any(path.is_relative_to(bad) for bad in _NEVER_READ)
            or not any(path.is_relative_to(root) for root in roots)):
        raise SourceFailed(f"{url}: local files are read only under the configured "
                           "documentation roots")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SourceFailed(f"{url}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise SourceFailed(f"{url}: not a regular file")
        data = fh.read(policy.max_bytes + 1)
    if len(data) > policy.max_bytes:
        raise SourceFailed(f"{url}: larger than {policy.max_bytes} bytes")
    text = data.decode("utf-8", "replace")
    if path.suffix.lower() in (".html", ".htm", ".xhtml"):
        text = html_to_text(text, url)
    return Document(url, path.name, text)


def _package(name: str, max_bytes: int) -> Document:
    try:
        meta = importlib.metadata.metadata(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SourceFailed(f"package:{name} is not installed") from exc
    # a missing header is None in the stdlib's metadata and a KeyError in importlib_metadata 8+
    def header(key: str) -> str:
        return str(meta[key] or "") if key in meta else ""

    text = str(meta.get_payload() or header("Description"))  # type: ignore[attr-defined]
    if not text.strip():
        raise SourceFailed(f"package:{name} has no long description")
    if header("Description-Content-Type").partition(";")[0].strip().lower() in _HTML:
        text = html_to_text(text, f"package:{name}")
    return Document(f"package:{name}", f"{name} {header('Version')}".strip(),
                    text[:max_bytes])


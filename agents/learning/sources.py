"""Trusted sources: fetch documents only from trusted http(s) URLs or local paths.

- ``http(s)://…``: httpx with a timeout and a size limit; only hosts of trusted sources.
- ``file:///…`` or a path: read from disk, size-limited, only at a trusted path.
- ``package:NAME``: an installed distribution's long description (its README), the demo's
  offline corpus.
A source that fails raises :class:`SourceFailed` with a one-line reason; the cycle records
it as an error event and carries on.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

__all__ = ["Document", "SourceFailed", "fetch_document"]

MAX_BYTES = 512 * 1024


class SourceFailed(RuntimeError):
    """A trusted source could not be read (timeout, HTTP error, too large, missing)."""


@dataclass(frozen=True)
class Document:
    """A fetched document: where from, a title, and its text."""

    url: str
    title: str
    text: str


async def fetch_document(url: str, trusted: set[str], *, timeout_s: float = 5.0,
                         client: httpx.AsyncClient | None = None) -> Document:
    """Fetch ``url`` if it is one of ``trusted``. Raises :class:`SourceFailed`."""
    if url not in trusted:
        raise SourceFailed(f"{url} is not a trusted source")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return await _http(url, timeout_s, client)
    if parsed.scheme == "package":
        return _package(parsed.path or parsed.netloc)
    path = Path(parsed.path if parsed.scheme == "file" else url)
    try:
        data = path.read_bytes()[:MAX_BYTES]
    except OSError as exc:
        raise SourceFailed(f"{url}: {exc.strerror}") from exc
    return Document(url, path.name, data.decode("utf-8", "replace"))


async def _http(url: str, timeout_s: float, client: httpx.AsyncClient | None) -> Document:
    own = client is None
    http = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
    try:
        async with http.stream("GET", url, timeout=timeout_s) as resp:
            if resp.status_code != 200:
                raise SourceFailed(f"{url}: HTTP {resp.status_code}")
            chunks, size = [], 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SourceFailed(f"{url}: larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise SourceFailed(f"{url}: timed out after {timeout_s} s") from exc
    except httpx.HTTPError as exc:
        raise SourceFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            await http.aclose()
    text = b"".join(chunks).decode("utf-8", "replace")
    return Document(url, url.rsplit("/", 1)[-1] or url, text)


def _package(name: str) -> Document:
    try:
        meta = importlib.metadata.metadata(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SourceFailed(f"package:{name} is not installed") from exc
    text = str(meta.get_payload() or meta["Description"] or "")  # type: ignore[attr-defined]
    if not text.strip():
        raise SourceFailed(f"package:{name} has no long description")
    return Document(f"package:{name}", f"{name} {meta['Version'] or ''}".strip(),
                    text[:MAX_BYTES])

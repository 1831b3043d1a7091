"""The client address of a request: the TCP peer, or what a trusted proxy forwarded.

``X-Forwarded-For`` (and RFC 7239 ``Forwarded: for=…``) is a header any client can send, so
it is believed only when the TCP peer is one of the configured reverse proxies
(``ApiSettings.trusted_proxies``, empty by default: the peer *is* the client). Then the list
is read from the right — each proxy appends the address it received the request from — and
the first address that is not itself a trusted proxy is the client (the algorithm of RFC 7239
section 5.2 and MDN's "X-Forwarded-For: selecting an IP address"). Entries a client put in
front of the list are never reached, so rotating them does not change the rate-limit
identity. A malformed entry where the client should be answers the proxy's address.

uvicorn's own proxy-header rewriting is turned off in :func:`api.server.serve`, so this is
the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

__all__ = ["client_ip", "forwarded_chain"]

Network = IPv4Network | IPv6Network


def _address(text: str) -> IPv4Address | IPv6Address | None:
    """``1.2.3.4``, ``[::1]:80``, ``"[::1]"``, ``1.2.3.4:80`` → the address, else None."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chain(conn: HTTPConnection) -> list[str]:
    """The forwarded addresses, client first: ``Forwarded`` ``for=`` values (RFC 7239
    section 4) when that header is present, else ``X-Forwarded-For``'s comma-separated list."""
    forwarded = conn.headers.getlist("forwarded")
    if forwarded:
        out = []
        for element in ",".join(forwarded).split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    out.append(value.strip())
        return out
    return [part.strip() for part in ",".join(conn.headers.getlist("x-forwarded-for"))
            .split(",") if part.strip()]


def _trusted(address: IPv4Address | IPv6Address | None,
             proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in proxies)


def client_ip(conn: HTTPConnection, proxies: Sequence[Network]) -> str:
    """The client's address as text (module docstring); ``"unknown"`` without a peer."""
    peer = conn.client.host if conn.client else "unknown"
    if not proxies or not _trusted(_address(peer), proxies):
        return peer
    nearest = peer
    for entry in reversed(forwarded_chain(conn)):
        address = _address(entry)
        if address is None:
            return nearest  # garbage where the client should be: the last proxy we trust
        if not _trusted(address, proxies):
            return str(address)
        nearest = str(address)
    return nearest

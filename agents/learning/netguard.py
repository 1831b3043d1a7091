"""Which network addresses a trusted-source fetch may connect to (SSRF guard, issue #17).

A source URL names a host; the host resolves to addresses; the fetch connects to one of them.
An address is refused when it is not globally reachable — loopback, RFC 1918 private,
link-local (with the cloud metadata address 169.254.169.254), carrier-grade NAT, multicast,
reserved, unspecified, documentation and benchmarking ranges, IPv6 unique-local (with AWS's
metadata ``fd00:ec2::254``), site-local, NAT64/6to4/Teredo embeddings — unless an
:class:`AllowedEndpoint` of the settings names it. Sources: RFC 1918 (private IPv4), RFC 6890
and the IANA special-purpose registries (what ``ipaddress``'s ``is_global`` is built on),
RFC 3927 / RFC 4291 (link-local), RFC 4193 (unique-local IPv6).

An allow-list entry is a network with an optional port: ``10.0.0.0/8``, ``127.0.0.1:8080``,
``[::1]:8080``. With a port it allows that port only, so a test (or an operator) can open one
loopback service without opening every loopback port to a redirect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AddressRefused",
    "AllowedEndpoint",
    "IPAddress",
    "Resolver",
    "check_address",
    "parse_allowed",
    "resolve_host",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port)`` → the addresses a connection could go to; raises ``OSError`` when unknown
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

#: always refused unless allow-listed, on top of "not globally reachable" (belt and braces:
#: ``is_global`` has changed between Python versions for some of these)
_ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fd00:ec2::254/128", "fe80::/10",
    "fec0::/10", "ff00::/8", "64:ff9b::/96", "2001::/32", "2002::/16",
))


class AddressRefused(ValueError):
    """A source's host resolves to an address the fetch may not connect to."""


@dataclass(frozen=True)
class AllowedEndpoint:
    """An allow-list entry: addresses in ``network``, on ``port`` (None = any port)."""

    network: IPNetwork
    port: int | None = None

    def allows(self, address: IPAddress, port: int) -> bool:
        """Whether ``address``:``port`` is inside this entry."""
        return address in self.network and (self.port is None or self.port == port)


def parse_allowed(entries: Iterable[str]) -> tuple[AllowedEndpoint, ...]:
    """Allow-list entries from settings strings: ``CIDR``, ``IPv4:port`` or ``[IPv6]:port``
    (a bare address is a /32 or /128). Raises ``ValueError`` for anything else."""
    out = []
    for raw in entries:
        text, port = raw.strip(), None
        if text.startswith("["):
            addr, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"allow-list entry {raw!r}: expected [IPv6]:port")
            text, port = addr, int(rest[1:]) if rest else None
        elif text.count(":") == 1:
            addr, _, port_text = text.partition(":")
            text, port = addr, int(port_text)
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"allow-list entry {raw!r}: port out of range")
        out.append(AllowedEndpoint(ipaddress.ip_network(text, strict=False), port))
    return tuple(out)


def _forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _forbidden(address.ipv4_mapped)
    return (not address.is_global or address.is_multicast or address.is_reserved
            or address.is_link_local or address.is_loopback or address.is_private
            or address.is_unspecified
            or any(address in net for net in _ALWAYS_REFUSED if net.version == address.version))


def check_address(address: IPAddress, port: int,
                  allowed: Sequence[AllowedEndpoint] = ()) -> None:
    """Raise :class:`AddressRefused` unless ``address``:``port`` may be contacted: a globally
    reachable unicast address (module doc), or one an ``allowed`` entry names."""
    if any(entry.allows(address, port) for entry in allowed):
        return
    if _forbidden(address):
        raise AddressRefused(f"{address} is not a public address (loopback, private, "
                             "link-local, metadata, multicast or reserved) and not allow-listed")


async def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The system's resolver (``getaddrinfo``, TCP), addresses in its order, de-duplicated.
    Raises ``OSError`` (``socket.gaierror``) when the name does not resolve."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(seen)


async def resolve_host(host: str, port: int, allowed: Sequence[AllowedEndpoint] = (), *,
                       resolver: Resolver = system_resolver) -> IPAddress:
    """The address to connect to for ``host``:``port``: an IP literal as is, else the first
    resolved address — after checking EVERY resolved address (a name that resolves to one
    public and one private address is refused, so the choice cannot be steered). Raises
    :class:`AddressRefused` (also when the name does not resolve)."""
    try:
        addresses: Sequence[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise AddressRefused(f"{host} does not resolve: {exc}") from exc
    if not addresses:
        raise AddressRefused(f"{host} resolves to no address")
    for address in addresses:
        check_address(address, port, allowed)
    return addresses[0]

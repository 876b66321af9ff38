"""Which webhook URLs the gateway will call: http(s) to public addresses only, and where.

A webhook makes the gateway send requests where a caller says; without this check any token
holder could probe or poke services on the gateway's own network (SSRF). Every address the
host resolves to must be globally routable: private, loopback, link-local, shared (CGNAT),
multicast, reserved and unspecified ranges are refused, unless the operator sets
TRAINHOUSE_WEBHOOK_ALLOW_PRIVATE=1 (tests, on-premises receivers).

An IPv6 address that carries an IPv4 address is judged by that IPv4 address too, since a
gateway with NAT64 or 6to4 routes reach it: IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
``::a.b.c.d``, NAT64 ``64:ff9b::/96`` (RFC 6052; the local-use ``64:ff9b:1::/48`` of RFC 8215 is
refused whole), 6to4 ``2002::/16`` and both Teredo addresses. So ``[64:ff9b::a9fe:a9fe]`` is the
cloud metadata address 169.254.169.254 and is refused.

The check runs when a webhook is registered and again before every delivery, and `check` returns
the addresses it approved: delivery connects to one of those (`Target.pinned_url`), never
resolving the name again, so a DNS answer that changes between check and connect (DNS rebinding)
cannot steer the request elsewhere.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

# (host, port) -> the IP addresses (text) the name resolves to. Injected in tests.
Resolver = Callable[[str, int], Awaitable[list[str]]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class UrlRefused(ValueError):
    """The URL is malformed, unresolvable or points at a non-public address."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the addresses that passed the check, in the resolver's order."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def pinned_url(self, address: str) -> str:
        """The URL with its host replaced by `address` (one of `addresses`)."""
        parts = urlsplit(self.url)
        literal = f"[{address}]" if ":" in address else address
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{literal}:{self.port}" if userinfo else f"{literal}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # ::/128 and ::1 are not IPv4
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def blocked(address: str) -> bool:
    """True when `address` (or an IPv4 address inside it) is not a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL:
            return True
        candidates.extend(embedded_ipv4(ip))
    return any(not c.is_global or c.is_multicast for c in candidates)


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or UrlRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"malformed URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("the URL must use http or https")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (a literal resolves to itself)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


async def check(url: str, allow_private: bool, timeout_s: float = 5.0,
                resolve: Resolver = system_resolver) -> Target:
    """The URL's Target with every address of its host approved, or UrlRefused."""
    scheme, host, port = parse(url)
    try:
        addresses = await asyncio.wait_for(resolve(host, port), timeout_s)
    except (OSError, asyncio.TimeoutError, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve host '{host}': {type(exc).__name__}") from None
    if not addresses:
        raise UrlRefused(f"host '{host}' has no address")
    try:
        refused = sorted(a for a in addresses if blocked(a))
    except ValueError:
        raise UrlRefused(f"host '{host}' resolves to something that is not an IP address") from None
    if refused and not allow_private:
        raise UrlRefused(f"host '{host}' resolves to a private, loopback or reserved address "
                         f"({refused[0]}); set TRAINHOUSE_WEBHOOK_ALLOW_PRIVATE=1 to allow it")
    return Target(url, scheme, host, port, tuple(addresses))

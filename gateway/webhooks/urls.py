"""Which webhook URLs the gateway will call: http(s) to public addresses only.

A webhook makes the gateway send requests where a caller says; without this check any token
holder could probe or poke services on the gateway's own network (SSRF). Every address the
host resolves to must be globally routable: private, loopback, link-local, shared (CGNAT),
multicast, reserved and unspecified ranges are refused, unless the operator sets
TRAINHOUSE_WEBHOOK_ALLOW_PRIVATE=1 (tests, on-premises receivers). The check runs when a
webhook is registered and again before every delivery (DNS may have changed since).
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UrlRefused(ValueError):
    """The URL is malformed, unresolvable or points at a non-public address."""


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def parse(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, or UrlRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"malformed URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("the URL must use http or https")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check(url: str, allow_private: bool, timeout_s: float = 5.0) -> None:
    """Raise UrlRefused unless every address of the URL's host may be called."""
    host, port = parse(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s)
    except (OSError, asyncio.TimeoutError, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve host '{host}': {type(exc).__name__}") from None
    addresses = {info[4][0] for info in infos}
    if not addresses:
        raise UrlRefused(f"host '{host}' has no address")
    if not allow_private:
        blocked = sorted(a for a in addresses if _blocked(a))
        if blocked:
            raise UrlRefused(f"host '{host}' resolves to a private, loopback or reserved address "
                             f"({blocked[0]}); set TRAINHOUSE_WEBHOOK_ALLOW_PRIVATE=1 to allow it")

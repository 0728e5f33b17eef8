"""Where stanceline may send requests: the SSRF rule for webhook URLs.

A subscription's URL is checked when it is made (the admin API, the CLI) and again
before every send (the dispatcher), because what a name resolves to can change.
Loopback, private, link-local and other non-global addresses are refused unless
``STANCELINE_WEBHOOK_ALLOW_PRIVATE`` is set (tests, closed networks).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UrlRefused(ValueError):
    """A URL that stanceline will not send to, with the reason in words."""


def url_shape(url: str) -> tuple[str, int]:
    """The host and port of an absolute http(s) URL; anything else is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` unless it is absolute http(s) and, without ``allow_private``, every
    address its host resolves to is a public one."""
    host, port = url_shape(url)
    if allow_private:
        return
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlRefused(f"its host {host!r} does not resolve ({exc.strerror or exc})") from None
    addresses = sorted({str(info[4][0]) for info in found})
    private = [a for a in addresses if not _public(a)]
    if private or not addresses:
        raise UrlRefused(
            f"its host {host!r} resolves to a loopback, private or link-local address"
            f" ({', '.join(private)}); set STANCELINE_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        )

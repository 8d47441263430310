"""The SSRF guard: a user's link must not reach a private network.

Every hop of a download asks `check_destination` first. Names are resolved once and
every address they resolve to is checked; the connection is then pinned to those
addresses, so a second DNS answer cannot swap a private one in.

The one exception the operator makes without listing it in `media.allow_hosts` is the
backend they configured (`backend_hosts`): a fal-compatible server on loopback or a
private network hands out result and storage URLs on its own address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from bot.errors import MediaError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIVATE_TEXT = "That link points to a private network address, which I can't fetch."
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


class PrivateAddress(MediaError):
    """A destination on a private network; `host` is the name or address it had."""

    def __init__(self, host: str) -> None:
        super().__init__(PRIVATE_TEXT)
        self.host = host


def backend_hosts(urls: Iterable[str], *, except_urls: Iterable[str] = ()) -> tuple[str, ...]:
    """`host:port` entries for `check_destination` that let through the servers these base
    URLs name (a loopback one under each of its loopback names, as a server there may make
    its URLs under another). `except_urls` (fal's own, public hosts) are left to the
    ordinary checks."""
    skip = {u.rstrip("/") for u in except_urls}
    out: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if url.rstrip("/") in skip or parts.scheme not in ("http", "https") or not host:
            continue
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        names = _LOOPBACK_NAMES if _is_loopback(host) else (f"[{host}]" if ":" in host else host,)
        out += [f"{name}:{port}" for name in names]
    return tuple(dict.fromkeys(out))


def _is_loopback(host: str) -> bool:
    if host.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_forbidden(ip: Address) -> bool:
    """True for any address that is not plainly on the public internet, including IPv4
    private addresses hidden inside IPv6 (mapped, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None and is_forbidden(mapped):
            return True
        if ip.teredo is not None and is_forbidden(ip.teredo[1]):
            return True
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to stay on loopback)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_allowed(host: str, port: int, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    names = (host, f"{host}:{port}", f"[{host}]:{port}")
    return any(entry.lower().strip() in names for entry in allowed)


def _ip_allowed(ip: Address, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue  # a host name, not a network
    return False


async def _addresses(host: str, port: int) -> list[str]:
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        return [str(literal)]
    try:
        addresses = await resolve_host(host, port)
    except (OSError, UnicodeError):
        raise MediaError(f"I couldn't find the server {host}.") from None
    if not addresses:
        raise MediaError(f"I couldn't find the server {host}.")
    return addresses


async def check_destination(host: str, port: int, allowed: Sequence[str]) -> list[str] | None:
    """Refuse private destinations. Returns the checked addresses to connect to (pinned, so a
    second DNS answer can't swap in a private one), or None when the host is allow-listed.

    `allowed` holds host names, `host:port` pairs and networks (`127.0.0.0/8`)."""
    if _host_allowed(host, port, allowed):
        return None
    addresses = await _addresses(host, port)
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%")[0])  # without an IPv6 zone
        if is_forbidden(ip) and not _ip_allowed(ip, allowed):
            raise PrivateAddress(host)
    return addresses

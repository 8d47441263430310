"""The SSRF guard: a user's link must not reach a private network.

Every hop of a download asks `check_destination` first. Names are resolved once and
every address they resolve to is checked; the connection is then pinned to those
addresses, so a second DNS answer cannot swap a private one in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from bot.errors import MediaError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIVATE_TEXT = "That link points to a private network address, which I can't fetch."


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
            raise MediaError(PRIVATE_TEXT)
    return addresses

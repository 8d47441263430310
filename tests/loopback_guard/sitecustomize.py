"""Loopback-only networking for every process the tests start.

The tests' subprocess environments put this directory on PYTHONPATH
(`tests.guard.with_loopback_guard`), so Python imports this module at start-up
in `ltx-bot run`, `ltx-bot sim` and any other child; tests/conftest.py imports
it for the test process itself. It refuses connections to anything but
loopback: a test that would reach the internet (say, discord.py looking for
Discord's real gateway) fails instead of quietly depending on it.

Standalone on purpose: a child may not have the repository on its path.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host in ("localhost",):
                return
            raise ConnectionRefusedError(
                f"a test tried to reach {host!r}: tests stay on loopback") from None
        if not ip.is_loopback:
            raise ConnectionRefusedError(
                f"a test tried to reach {host}: tests stay on loopback")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]

"""The loopback guard is active in the test process itself (tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest


def test_a_test_cannot_reach_beyond_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(
        ConnectionRefusedError, match="tests stay on loopback"
    ):
        sock.connect(("93.184.216.34", 80))


def test_loopback_is_still_reachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())

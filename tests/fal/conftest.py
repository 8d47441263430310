"""Fixtures for the fal client and simulator: a real simulator on 127.0.0.1:0."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.fal import FalClient
from bot.sim import SimOptions, Simulator

KEY = "fal-test-key-0123456789abcdef-NEVER-LOGGED"


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like are local by nature
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or reach a host beyond loopback fails the test at once."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise AssertionError(f"test tried to reach {address[0]} beyond loopback")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise AssertionError(f"test tried to reach {address[0]} beyond loopback")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _loopback(name):
            raise AssertionError(f"test tried to resolve {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def fast_options(**changes: Any) -> SimOptions:
    options = SimOptions(run_seconds=0.05, concurrency=8, keepalive_seconds=5.0, steps=4)
    for name, value in changes.items():
        setattr(options, name, value)
    return options


@pytest.fixture
def sim_options() -> SimOptions:
    return fast_options()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


def make_client(http: httpx.AsyncClient, url: str, **changes: Any) -> FalClient:
    settings: dict[str, Any] = {
        "key": KEY, "queue_url": url, "rest_url": url, "backoff_base": 0.01,
        "poll_interval": 0.02, "max_poll_interval": 0.1, "max_retry_seconds": 10.0,
    }
    settings.update(changes)
    return FalClient(http, **settings)


@pytest.fixture
def fal(http: httpx.AsyncClient, sim: Simulator) -> FalClient:
    return make_client(http, sim.url)

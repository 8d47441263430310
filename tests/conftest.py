"""Shared fixtures: settings on tmp paths, a running fal simulator, a started App.

Everything listens on 127.0.0.1 with port 0. A guard refuses any socket
connection beyond loopback, so a test that would reach the internet fails
instead of quietly depending on it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings

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
            raise ConnectionRefusedError(f"test tried to reach {host!r}: tests stay on loopback") from None
        if not ip.is_loopback:
            raise ConnectionRefusedError(f"test tried to reach {host}: tests stay on loopback")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for a test: files under tmp_path, fast progress edits, loopback media allowed."""
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "bot.sqlite3")},
        "media": {"allow_hosts": ["127.0.0.1", "localhost"], "output_dir": str(tmp_path / "outputs"),
                  "tmp_dir": str(tmp_path / "tmp")},
        "jobs": {"edit_interval_seconds": 0.0},
        "quota": {"cooldown_seconds": 0, "max_concurrent_jobs": 20, "daily_credits": 10_000,
                  "monthly_credits": 100_000},
        "backend": {"kind": "sim", "sim_queue_seconds": 0.0, "sim_run_seconds": 0.2,
                    "sim_concurrency": 8, "max_concurrent": 8},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    from bot.sim import SimOptions, Simulator

    simulator = Simulator(SimOptions(queue_seconds=0.0, run_seconds=0.2, concurrency=8, scale=0.1))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def app(settings: Settings, sim: Any) -> AsyncIterator[Any]:
    """A started App whose fal client talks to the `sim` fixture (so tests can steer faults).

    Register ports with `app.register_port(port)`: the runner picks them up at once.
    """
    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = sim.url
    settings.backend.fal_rest_url = sim.url
    application = App(settings)
    await application.start()
    try:
        yield application
    finally:
        await application.stop()

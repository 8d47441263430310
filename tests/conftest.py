"""Shared fixtures: settings on tmp paths, a running fal simulator, a started App.

Everything listens on 127.0.0.1 with port 0. A guard refuses any socket
connection beyond loopback, so a test that would reach the internet fails
instead of quietly depending on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

# The loopback guard, installed on import: the very module every test subprocess
# loads through PYTHONPATH (see tests/guard.py), so both refuse the same addresses.
import tests.loopback_guard.sitecustomize  # noqa: F401
from bot.config import Settings
from tests.pg_fixture import pg_databases  # noqa: F401  (one PostgreSQL server per test session)


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
def sim_options() -> Any:
    """Fast, small renders; an area's conftest overrides this to steer its simulator."""
    from bot.sim import SimOptions

    return SimOptions(queue_seconds=0.0, run_seconds=0.2, concurrency=8, scale=0.1)


@pytest.fixture
async def sim(sim_options: Any) -> AsyncIterator[Any]:
    from bot.sim import Simulator

    simulator = Simulator(sim_options)
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

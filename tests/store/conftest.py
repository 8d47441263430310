"""Fixtures for the store and quota tests: a real store on each backend (a SQLite file,
a fresh database on a PostgreSQL server the tests start) and a clock we move by hand.

Every test that takes `store` (or `where`) runs once per backend: `[sqlite]` and
`[postgresql]`. The server starts once per session (tests/pg.py); each test gets
an empty database at the latest schema to itself (a copy of a migrated template,
emptied and reused after the test). What the tests are made of is in `scenarios`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Settings
from bot.quota import Quota
from bot.store import SqlStore, open_store
from tests.pg import PgDatabases  # its `pg_databases` fixture: tests/conftest.py

# The scenarios' names, for the tests that import them from here.
from .scenarios import (  # noqa: F401
    ADMIN,
    ALICE,
    BOB,
    DM,
    GUILD,
    OTHER_GUILD,
    ManualClock,
    make_request,
    make_settings,
)

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def clock() -> ManualClock:
    # 19:00 UTC on 29 April: 5 h to the daily reset, 1 day 5 h to the monthly one.
    return ManualClock(datetime(2026, 4, 29, 19, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def new_where(backend: str, tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[Callable[[str], str | Path]]:
    """Makes places for new stores on this test's backend: `new_where(name)` is a SQLite
    file in tmp_path, or the URL of an empty migrated database. The server is started
    only for tests that run on PostgreSQL."""
    if backend == "sqlite":
        yield lambda name: tmp_path / "data" / f"{name}.sqlite3"
        return
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    lent: list[str] = []

    def new(name: str) -> str:
        lent.append(databases.lend())
        return lent[-1]

    yield new
    for url in lent:
        databases.give_back(url)


@pytest.fixture
def where(backend: str, db_path: Path, new_where: Callable[[str], str | Path]) -> str | Path:
    """Where this test's store lives (for SQLite, the `db_path` file)."""
    return db_path if backend == "sqlite" else new_where("bot")


@pytest.fixture
async def store(where: str | Path, clock: ManualClock) -> AsyncIterator[SqlStore]:
    s = await open_store(where, clock=clock)
    yield s
    await s.close()


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return make_settings(db_path)


@pytest.fixture
def quota(store: SqlStore, settings: Settings, clock: ManualClock) -> Quota:
    return Quota(store, settings, clock=clock)

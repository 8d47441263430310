"""Fixtures for the store and quota tests: a real store on each backend (a SQLite file,
a fresh database on a PostgreSQL server the tests start) and a clock we move by hand.

Every test that takes `store` (or `where`) runs once per backend: `[sqlite]` and
`[postgresql]`. The server starts once per session (tests/pg.py); each test gets
an empty database at the latest schema to itself (a copy of a migrated template,
emptied and reused after the test). What the tests are made of is in `scenarios`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from bot.config import Settings
from bot.quota import Quota
from bot.store import SqlStore, open_store
from bot.store.postgres import connect, migrate
from bot.store.transfer import IDENTITIES, TABLES
from tests.pg import PgServer, PgUnavailable

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
TEMPLATE = "ltx_template"


@pytest.fixture
def clock() -> ManualClock:
    # 19:00 UTC on 29 April: 5 h to the daily reset, 1 day 5 h to the monthly one.
    return ManualClock(datetime(2026, 4, 29, 19, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


class PgDatabases:
    """Databases on the test server: fresh ones (migrated copies of the template, or
    empty), and migrated ones lent to a test and emptied when it gives them back, since
    emptying five small tables is many times cheaper than creating a database."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self._names = itertools.count(1)
        self._spare: list[str] = []
        self._admin = psycopg.connect(server.url(), autocommit=True)
        self._admin.execute(f"CREATE DATABASE {TEMPLATE}")
        with connect(server.url(TEMPLATE)) as conn:
            migrate(conn)

    def fresh(self, *, migrated: bool = True) -> str:
        """The URL of a new database, at the latest schema (or with nothing in it)."""
        name = f"test_{next(self._names)}"
        template = TEMPLATE if migrated else "template0"
        self._admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.server.url(name)

    def lend(self) -> str:
        """A migrated database with no rows in it, for `give_back` after the test."""
        return self._spare.pop() if self._spare else self.fresh()

    def give_back(self, url: str) -> None:
        # A store the test left open must not keep the tables locked.
        self._admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = %s", (url.rsplit("/", 1)[1],))
        # DELETE, not TRUNCATE: a test leaves a handful of rows, and TRUNCATE makes new
        # files for every table and index. Children first, then ids from 1 again.
        # `instances`, `pauses` and `oauth_states` are not copied between stores (a process registers anew;
        # a pause and an OAuth state are the moment's state), so not in TABLES.
        emptied = "; ".join([*(f"DELETE FROM {t}" for t in ("instances", "pauses", "oauth_states",
                                                             *reversed(TABLES))),
                             *(f"ALTER TABLE {t} ALTER COLUMN id RESTART" for t in IDENTITIES)])
        with connect(url) as conn:
            conn.execute(emptied)  # no parameters: one round trip for all of it
        self._spare.append(url)

    def close(self) -> None:
        self._admin.close()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """The session's PostgreSQL server. Fails (never skips) when it cannot start."""
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        databases = PgDatabases(server)
        yield databases
        databases.close()
    finally:
        server.stop()


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

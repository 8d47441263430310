"""The session's PostgreSQL server as a pytest fixture (tests/conftest.py registers it,
so every test directory shares one server per session, one per xdist worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PgDatabases, PgServer, PgUnavailable


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

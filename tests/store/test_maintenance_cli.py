"""`ltx-bot migrate-store`, `health` and `backup` on a PostgreSQL store, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli

from .conftest import PgDatabases
from .test_transfer import source  # noqa: F401  (the filled SQLite store fixture)


def config_for(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "pg.toml"
    # No [database] path: the url alone chooses PostgreSQL.
    config.write_text(f'[database]\nurl = "{url}"\n\n[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    return config


def test_migrate_store_copies_once_and_then_refuses(
    source: Path, pg_databases: PgDatabases, capsys: pytest.CaptureFixture[str],  # noqa: F811
) -> None:
    url = pg_databases.fresh(migrated=False)
    assert cli.main(["migrate-store", "--from", f"sqlite:{source}", "--to", url]) == 0
    out = capsys.readouterr().out
    assert "copied" in out and "ledger audit clean" in out and "jobs 3" in out
    assert cli.main(["migrate-store", "--from", f"sqlite:{source}", "--to", url]) == 1
    assert "empty" in capsys.readouterr().err


def test_health_reads_a_postgresql_store_and_never_shows_its_password(
    tmp_path: Path, pg_databases: PgDatabases, capsys: pytest.CaptureFixture[str],
) -> None:
    url = pg_databases.fresh()
    assert cli.main(["health", "--no-heartbeat", "--config", str(config_for(tmp_path, url))]) == 0
    out = capsys.readouterr().out
    assert "postgresql" in out and "opens" in out
    # A server that does not answer: unhealthy, one line, no password in it.
    dead = "postgresql://bot:s3cretpw@127.0.0.1:9/none"
    assert cli.main(["health", "--no-heartbeat", "--config", str(config_for(tmp_path, dead))]) == 1
    err = capsys.readouterr().err
    assert "does not open" in err and "s3cretpw" not in err


def test_health_deep_reads_every_table_of_a_postgresql_store(
    tmp_path: Path, pg_databases: PgDatabases, capsys: pytest.CaptureFixture[str],
) -> None:
    url = pg_databases.fresh()
    config = str(config_for(tmp_path, url))
    assert cli.main(["health", "--no-heartbeat", "--deep", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "every table reads (" in out and "jobs 0" in out and "ledger 0" in out

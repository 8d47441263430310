"""A throwaway PostgreSQL server for the tests, started from Debian's binaries.

`PgServer.start()` runs `initdb` and `postgres` in a fresh temporary directory,
listening on a free port of 127.0.0.1 only (and a unix socket in that directory),
with fsync off: the data is thrown away with the directory when `stop()` runs.

initdb and postgres refuse to run as root (CI runs as root), so as root they run
as the unprivileged `postgres` user (`runuser -u postgres`) in a directory that
user owns; as anyone else they run directly. Missing binaries are an error that
says what to install: a PostgreSQL test that cannot run must fail, never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bot.store.postgres import connect, migrate
from bot.store.transfer import IDENTITIES, TABLES

SUPERUSER = "postgres"
TEMPLATE = "ltx_template"
INSTALL_HINT = ("PostgreSQL's server binaries (initdb, pg_ctl) were not found under "
                "/usr/lib/postgresql/*/bin or $LTX_TEST_PG_BIN: install them with "
                "`apt-get install -y postgresql` (.ci/run does this).")
# Throwaway data: nothing needs to survive a crash, so skip every flush.
SERVER_OPTIONS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                  "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB")


class PgUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def find_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL bin directory (or $LTX_TEST_PG_BIN), None when absent."""
    named = os.environ.get("LTX_TEST_PG_BIN")
    candidates = [Path(named)] if named else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PgServer:
    """One running test server; `url(name)` addresses a database on it."""

    bin_dir: Path
    root: Path  # the temporary directory: data/, the socket and the log
    port: int
    as_root: bool

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        # As root, run as the unprivileged user; its own environment keeps root's HOME out.
        prefix = ["runuser", "-u", SUPERUSER, "--"] if self.as_root else []
        return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120,
                              cwd=self.root, check=False)

    @classmethod
    def start(cls) -> PgServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PgUnavailable(INSTALL_HINT)
        as_root = os.geteuid() == 0
        # As root, in /tmp whatever TMPDIR says: the postgres user must reach the directory.
        root = Path(tempfile.mkdtemp(prefix="ltx-test-pg-", dir="/tmp" if as_root else None))
        if as_root:
            shutil.chown(root, SUPERUSER, SUPERUSER)
        server = cls(bin_dir, root, 0, as_root)
        try:
            server._init()
            server._launch()
        except BaseException:
            server.remove()
            raise
        return server

    def _init(self) -> None:
        done = self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                         "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            raise PgUnavailable(f"initdb failed:\n{done.stdout}{done.stderr}")

    def _launch(self) -> None:
        # A port that was free a moment ago may be taken by the time postgres binds it.
        for _ in range(5):
            self.port = free_port()
            options = f"{SERVER_OPTIONS} -p {self.port} -k {self.root}"
            done = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
                             "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
            if done.returncode == 0:
                return
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise PgUnavailable(f"postgres would not start:\n{done.stdout}{done.stderr}{log}")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                      "-w", "stop")
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


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
        # `instances`, `pauses` and `oauth_states` are not copied between stores (a process
        # registers anew; a pause and an OAuth state are the moment's state): not in TABLES.
        emptied = "; ".join([*(f"DELETE FROM {t}" for t in ("instances", "pauses", "oauth_states",
                                                             *reversed(TABLES))),
                             *(f"ALTER TABLE {t} ALTER COLUMN id RESTART" for t in IDENTITIES)])
        with connect(url) as conn:
            conn.execute(emptied)  # no parameters: one round trip for all of it
        self._spare.append(url)

    def close(self) -> None:
        self._admin.close()

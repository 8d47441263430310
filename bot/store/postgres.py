"""The Store on a PostgreSQL server, shared by every bot process pointed at it.

Driver: psycopg 3 with psycopg_pool, on synchronous connections in worker threads.
A quota decision is one synchronous transaction body (`Store.run(body)`, shared
with SQLite and `bot.quota`), so the body runs whole on a worker thread that holds
one pooled connection for exactly that transaction: one thread crossing per
transaction, as on SQLite, and the statements in between are plain blocking
calls that release the GIL while they wait on the server. An async driver would
need every body written twice (sync for SQLite, async here) or a crossing per
statement. `pool_size` connections, `pool_size` threads: a transaction never
waits for a connection, only for the server.

Migrations run at open, under an advisory lock, so processes starting together
migrate once; the version lives in a one-row `schema_version` table.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from .base import SqlStore
from .dialect import POSTGRES
from .postgres_tx import PgTx
from .protocol import Clock, T, utc_now
from .queries import SqlTx
from .schema import PG_MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

PgConnection = psycopg.Connection[DictRow]
CONNECT_TIMEOUT_SECONDS = 10
POOL_OPEN_TIMEOUT_SECONDS = 30.0
# A deadlock or serialization failure undoes the whole transaction, so running the
# body again is safe. The lock order of `postgres_tx` should make these never happen;
# the retry is the safety net, not the plan.
MAX_ATTEMPTS = 5
_RETRY = (errors.SerializationFailure, errors.DeadlockDetected)


class _StaleConnection(Exception):
    """The connection broke before COMMIT was sent: nothing of the transaction is committed."""

    def __init__(self, error: psycopg.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error


# pg_advisory_xact_lock key that serializes migrations: "ltxbot" as a number.
MIGRATION_LOCK = int.from_bytes(b"ltxbot", "big")


class PgStore(SqlStore):
    """The Store on PostgreSQL. Open with `open_postgres` (or `open_store`).

    Each `run(body)` takes a pooled connection on one of `pool_size` worker
    threads, runs `body` in one READ COMMITTED transaction with the row locks of
    `PgTx`, and commits; a deadlock or serialization failure runs it again, and so
    does a connection that turns out dead at BEGIN.
    """

    def __init__(self, pool: ConnectionPool[PgConnection], where: str, pool_size: int,
                 clock: Clock = utc_now) -> None:
        self._pool = pool
        self.where = where
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="ltx-pg")
        self._closed = False

    async def run(self, body: Callable[[SqlTx], T], *, write: bool = True) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        # Once on its thread the transaction completes even if the caller is cancelled,
        # as on SQLite: what a caller was told is what the database holds.
        return await loop.run_in_executor(self._executor, self._transaction, body, write)

    def _transaction(self, body: Callable[[SqlTx], T], write: bool) -> T:
        attempt = 1
        while True:
            try:
                return self._attempt(body, write)
            except _StaleConnection as stale:
                # Nothing ran; the pool drops the dead connection and hands out another.
                if attempt > self._pool.max_size:
                    raise stale.error from None
            except _RETRY as exc:
                if attempt >= MAX_ATTEMPTS:
                    raise
                log.info("store transaction retried after %s (attempt %d)",
                         type(exc).__name__, attempt)
                time.sleep(random.uniform(0, 0.005 * attempt))  # on the worker thread
            attempt += 1

    def _attempt(self, body: Callable[[SqlTx], T], write: bool) -> T:
        with self._pool.connection() as conn:
            committing = False
            try:
                # Pipeline mode: statements whose answer nobody reads yet (BEGIN, locks,
                # inserts, COMMIT) travel with the next one that is read (postgres_tx).
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN")
                    tx = PgTx(conn, self.clock, POSTGRES, write=write)
                    tx.lease = self.lease
                    tx.pipeline = pipeline
                    value = body(tx)
                    committing = True
                    conn.execute("COMMIT")
                # Leaving the block waited for every answer, the COMMIT's too.
            except BaseException as exc:
                if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                if (isinstance(exc, psycopg.OperationalError) and conn.broken
                        and not committing):
                    # The connection was dead (the server dropped it while it sat in the
                    # pool: restart, failover) or died before COMMIT was sent: nothing of
                    # this transaction was committed, so it may run again on another.
                    raise _StaleConnection(exc) from exc
                raise
            return value

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shut)

    def _shut(self) -> None:
        self._executor.shutdown(wait=True)  # running transactions finish first
        self._pool.close()

    def describe(self) -> tuple[Literal["sqlite", "postgresql"], str]:
        return "postgresql", self.where


# ---------------------------------------------------------------- migrations


def migrate(conn: PgConnection, target: int = SCHEMA_VERSION) -> int:
    """Run every migration the database has not seen, each in its own transaction under
    an advisory lock (another process may be migrating the same database right now)."""
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            version = _version(conn)
            if version > len(PG_MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {version} is newer than this code "
                    f"({len(PG_MIGRATIONS)}); upgrade ltx-bot"
                )
            if version >= target:
                return version
            for statement in PG_MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = %s", (version + 1,))


def _version(conn: PgConnection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        return 0
    return int(row["version"])


# ---------------------------------------------------------------- opening


def describe_url(url: str) -> str:
    """host:port/database of a connection URL: where it points, not how it logs in."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def connect(url: str) -> PgConnection:
    """One autocommit connection whose rows are read by column name (migrations, copies)."""
    return psycopg.connect(url, autocommit=True, row_factory=dict_row,
                           connect_timeout=CONNECT_TIMEOUT_SECONDS)


def _open(url: str, pool_size: int, clock: Clock) -> PgStore:
    # One plain connection first: a wrong URL fails here at once with the server's
    # reason, instead of after the pool's timeout.
    with connect(url) as conn:
        migrate(conn)
    pool: ConnectionPool[PgConnection] = ConnectionPool(
        url, min_size=pool_size, max_size=pool_size, open=False, name="ltx-bot",
        kwargs={"autocommit": True, "row_factory": dict_row,
                "connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    try:
        pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT_SECONDS)
    except BaseException:
        pool.close()
        raise
    return PgStore(pool, describe_url(url), pool_size, clock)


async def open_postgres(url: str, *, pool_size: int = 4, clock: Clock = utc_now) -> PgStore:
    """Connect to the database at `url`, bring its schema up to date, open the pool."""
    return await asyncio.to_thread(_open, url, pool_size, clock)


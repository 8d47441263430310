"""The shared queries on PostgreSQL, plus the row locks that make its transactions
as exact as SQLite's, and the pipeline that keeps their round trips few.

SQLite lets one writer at a time into the file, so a transaction that reads the
usage and then writes a reservation can never be overtaken. PostgreSQL runs
writers side by side (READ COMMITTED), so a quota decision first locks what it
is about to read, and every transaction takes its locks in one order:

1. the job's row (`charge_of`: settle and refund of one job wait for each other);
2. the user's row (taken by `upsert_user`, or by `usage` when the transaction did
   not upsert the user: one user's admissions queue up);
3. the usage_totals rows of `queries.usage_keys`, in that order: the user's day
   and month, then shard 0 of the workspace's month and of the bot's day, then the
   one other shard of each that the transaction's user charges.

A shared total (a workspace's month, the bot's day) is kept as a row per shard of
users (`queries.SHARED_SHARDS`) and read as their sum. Shard 0 is also the gate of
a shared limit: every admission under that limit locks it before reading the sum,
so admissions queue up there and each reads what the one before it committed. A
settle or refund takes no gate: it adds to its user's shard whatever the sum was
when an admission read it, and the outcome is that of the settle coming after
that admission.

An admission locks only the totals rows a configured limit reads (`limited`): the
prefix of `usage_keys` up to the last of them, so that the rows it locks now and
the ones `record` updates later are still taken in that one order. With no
workspace or global limit it locks no totals row at all: its own user's rows are
guarded by the user's row, and what it adds to the shared rows is a sum, taken
at the end (the row lock then lasts only until the commit that follows at once) on
the rows of its user's shard (`queries.SHARED_SHARDS`): admissions and settles of
users of other shards do not wait for it at all.

Each lock is taken by its own statement, so the next statement (a fresh
snapshot under READ COMMITTED) reads what the transaction that held the lock
committed. Lock waits instead of serializable retries: under contention every
admission against a global limit touches the global day's row, so retries would
mostly collide again.

The transaction runs in pipeline mode (`PgStore`): statements whose answer the
body does not read (BEGIN, locks, ledger rows, totals, COMMIT) go out together
with the next one it does read, so an admission costs four round trips, not ten.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import psycopg

from bot.ports import User

from .protocol import JobCharge, UsageSnapshot, UserRow, day_key, month_key
from .queries import SHARED_SCOPES, Cursor, Params, SqlTx, Statement, usage_keys

# pg_advisory_xact_lock key that serializes taking a slot at fal: "falslot" as a number.
FAL_SLOTS_LOCK = int.from_bytes(b"falslot", "big")


class _Counted:
    """A cursor in pipeline mode whose `rowcount` waits for its statement's answer
    (psycopg fetches the answer for `fetch*`, not for `rowcount`)."""

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class PgTx(SqlTx):
    """SqlTx with PostgreSQL's row locks in write transactions (see the module docstring)."""

    pipeline: psycopg.Pipeline | None = None
    # The user whose row this transaction's `upsert_user` locked (ON CONFLICT DO UPDATE
    # locks the row it updates, FOR NO KEY UPDATE, until the end of the transaction).
    _user_locked: str | None = None

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        cursor = super().execute(sql, params)
        if self.pipeline is None:
            return cursor
        return _Counted(cursor, self.pipeline)  # type: ignore[arg-type]

    def usage(self, user_key: str, workspace_key: str | None, at: datetime, *,
              limited: Collection[str] | None = None) -> UsageSnapshot:
        if self.write:
            self._lock_usage(user_key, workspace_key, at, limited)
        return super().usage(user_key, workspace_key, at)

    def upsert_user(self, user: User, now: datetime) -> UserRow:
        row = super().upsert_user(user, now)
        self._user_locked = user.key
        return row

    def write_charge(self, ledger: Statement, totals: Statement) -> None:
        # One statement instead of two: every admission and settle writes both, and each
        # statement costs the bot's thread and the server a message of their own.
        self.execute(f"WITH ledger_row AS ({ledger[0]}) {totals[0]}", [*ledger[1], *totals[1]])

    def charge_of(self, job_id: int) -> JobCharge | None:
        if self.write:
            self.execute("SELECT id FROM jobs WHERE id = ? FOR NO KEY UPDATE", (job_id,))
        return super().charge_of(job_id)

    def lock_fal_slots(self) -> None:
        # Two processes counting the jobs at fal side by side would both see a free slot:
        # taking a slot is serialized store-wide (released at commit).
        self.execute("SELECT pg_advisory_xact_lock(?)", (FAL_SLOTS_LOCK,))

    def _lock_usage(self, user_key: str, workspace_key: str | None, at: datetime,
                    limited: Collection[str] | None) -> None:
        # NO KEY UPDATE: foreign-key checks of other transactions (their ledger rows
        # naming this user) need not wait.
        if user_key != self._user_locked:  # an admission has it already: one statement less
            self.execute("SELECT key FROM users WHERE key = ? FOR NO KEY UPDATE", (user_key,))
        # Shard 0 of a limited scope is its gate (see the module docstring).
        keys = usage_keys(user_key, workspace_key, day_key(at), month_key(at))
        shared = [i for i, (scope, _k, _p) in enumerate(keys)
                  if scope in SHARED_SCOPES and (limited is None or scope in limited)]
        if not shared:
            return
        keys = keys[:shared[-1] + 1]
        # A totals row may not exist yet (the first job of the day): create it at zero,
        # and lock it whether it was created or already there, in one statement.
        marks = ", ".join("(?, ?, ?)" for _ in keys)
        self.execute(
            f"""INSERT INTO usage_totals (scope, key, period) VALUES {marks}
                ON CONFLICT (scope, key, period) DO UPDATE SET credits = usage_totals.credits""",
            [value for key in keys for value in key],
        )

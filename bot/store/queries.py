"""The store's queries, shared by both backends: every statement, each method a step
of one transaction.

Only `?`/`:name` parameters, ON CONFLICT and RETURNING are used beyond plain SQL, all
of which both SQLite and PostgreSQL have; the `Dialect` rewrites the parameter marks.
What PostgreSQL needs on top (row locks, since it does not lock the whole database
for a writer) is added by `postgres_tx.PgTx`.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from bot.model import JobRecord
from bot.ports import User

from .codec import (
    UPDATABLE_FIELDS,
    Row,
    decode_time,
    encode_field,
    encode_time,
    job_from_row,
    user_from_row,
)
from .dialect import Dialect
from .leases import Lease
from .protocol import (
    Clock,
    JobCharge,
    JobNotFound,
    LeaseRefused,
    LedgerEntry,
    NewJob,
    UsageRow,
    UsageSnapshot,
    UserRow,
    day_key,
    month_key,
)
from .schema import FINAL_SQL, GLOBAL_KEY

Params = Sequence[Any] | dict[str, Any]
Statement = tuple[str, list[Any]]  # SQL with `?` marks and its parameters
SEEN_EVENTS_KEEP_DAYS = 2  # platforms stop retrying within hours


class Cursor(Protocol):
    """What the store reads from a DB-API cursor (sqlite3's and psycopg's alike)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection whose rows are read by column name (sqlite3.Row, psycopg's dict_row)."""

    def execute(self, sql: str, params: Any, /) -> Cursor: ...


# The rows shared between users (a workspace's month, the bot's day) are each kept as
# SHARED_SHARDS rows, told apart by a suffix of the period: every charge adds to the
# row of its user's shard, and a read sums them all. On PostgreSQL every admission and
# settle of every user would otherwise update the one row of the bot's day, and each
# waits for the one before it to commit (row locks), even with no limit configured.
# SQLite lets one writer in at a time anyway: it writes shard 0 only (`Dialect.shards`).
SHARED_SHARDS = 8
SHARED_SCOPES = ("ws_month", "global_day")


def shard_period(period: str, shard: int) -> str:
    """The period of a shared scope's row of `shard` (shard 0: the period itself)."""
    return period if shard == 0 else f"{period}~{shard}"


def unsharded(period: str) -> str:
    return period.partition("~")[0]


def shard_of(user_key: str, shards: int) -> int:
    """The shard a user's charges go to, the same every time."""
    return zlib.crc32(user_key.encode()) % shards


def usage_keys(user_key: str, workspace_key: str | None, day: str, month: str,
               shards: Iterable[int] = (0,)) -> list[tuple[str, str, str]]:
    """The usage_totals rows one charge moves (`shards`: those of the shared scopes), as
    (scope, key, period), in the one order in which every transaction touches them (on
    PostgreSQL that order is the lock order, so two transactions never wait on each
    other in a circle)."""
    keys = [("user_day", user_key, day), ("user_month", user_key, month)]
    shards = sorted(shards)
    if workspace_key:
        keys.extend(("ws_month", workspace_key, shard_period(month, s)) for s in shards)
    keys.extend(("global_day", GLOBAL_KEY, shard_period(day, s)) for s in shards)
    return keys


def _shard_marks(name: str) -> str:
    return "(" + ", ".join(f":{name}{s}" for s in range(SHARED_SHARDS)) + ")"


def _shard_params(name: str, period: str) -> dict[str, str]:
    return {f"{name}{s}": shard_period(period, s) for s in range(SHARED_SHARDS)}


class SqlTx:
    """Statements on a connection that is inside a transaction, on a database thread.

    `write` says whether the transaction may write (the body was given to `Store.run`
    with `write=True`).
    """

    def __init__(self, conn: Connection, clock: Clock, dialect: Dialect, *,
                 write: bool = True) -> None:
        self.conn = conn
        self._clock = clock
        self.dialect = dialect
        self.write = write
        # The lease of this process (set once it registered): a job it creates is its own
        # from the first instant, so no other process adopts it while it uploads.
        self.lease: Lease | None = None

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self.conn.execute(self.dialect.sql(sql), params)

    def _one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self.execute(sql, params).fetchone()
        return row

    def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return self.execute(sql, params).fetchall()

    def upsert_user(self, user: User, now: datetime) -> UserRow:
        row = self._one(
            """INSERT INTO users (key, platform, platform_id, name, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET
                 name = excluded.name,
                 updated_at = CASE WHEN users.name = excluded.name THEN users.updated_at
                                   ELSE excluded.updated_at END
               RETURNING *""",
            (user.key, user.platform, user.id, user.name or user.id, encode_time(now), encode_time(now)),
        )
        assert row is not None
        return user_from_row(row)

    def ensure_user_key(self, user_key: str, now: datetime) -> UserRow:
        """A user named only by key (an admin blocking someone who never used the bot)."""
        platform, sep, platform_id = user_key.partition(":")
        if not sep or not platform or not platform_id:
            raise ValueError(f"user key must be platform:id, got {user_key!r}")
        row = self._one(
            """INSERT INTO users (key, platform, platform_id, name, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET platform = users.platform
               RETURNING *""",
            (user_key, platform, platform_id, platform_id, encode_time(now), encode_time(now)),
        )
        assert row is not None
        return user_from_row(row)

    def get_user(self, user_key: str) -> UserRow | None:
        row = self._one("SELECT * FROM users WHERE key = ?", (user_key,))
        return None if row is None else user_from_row(row)

    def usage(self, user_key: str, workspace_key: str | None, at: datetime, *,
              limited: Collection[str] | None = None) -> UsageSnapshot:
        """The user's, workspace's and bot's usage at `at`. `limited`: the shared scopes
        ("ws_month", "global_day") a configured limit checks (None: all), which a backend
        that runs writers side by side must lock before reading; SQLite needs none."""
        day, month = day_key(at), month_key(at)
        row = self._one(_USAGE, {"u": user_key, "d": day, "m": month, "w": workspace_key,
                                 **_shard_params("ms", month), **_shard_params("ds", day)})
        assert row is not None
        return UsageSnapshot(
            day_credits=row["dc"] or 0, day_bonus=row["db"] or 0,
            month_credits=row["mc"] or 0, month_bonus=row["mb"] or 0,
            workspace_month_credits=(row["wc"] or 0) if workspace_key else 0,
            global_day_credits=row["gc"] or 0, running_jobs=row["running"],
            last_job_at=decode_time(row["last_at"]), bonus_balance=row["balance"] or 0,
        )

    def insert_job(self, new: NewJob) -> JobRecord:
        values: dict[str, Any] = {
            "owner_key": new.owner.key,
            "owner_platform": new.owner.platform,
            "owner_id": new.owner.id,
            "owner_name": new.owner.name,
            "endpoint_id": new.endpoint_id,
            "prompt": new.prompt,
            "estimate_credits": new.estimate_credits,
            "estimate_usd": new.estimate_usd,
            "interaction_token": new.interaction_token,
            "updated_at": encode_time(new.created_at),
        }
        if self.lease is not None:
            values["lease_owner"] = self.lease.owner
            values["lease_expires"] = self.lease.until(new.created_at)
        for name, value in (("place", new.place), ("input", new.input), ("state", new.state),
                            ("created_at", new.created_at), ("parent_id", new.parent_id),
                            ("parent_kind", new.parent_kind),
                            ("status_message", new.status_message),
                            ("interaction_expires_at", new.interaction_expires_at),
                            ("owner_roles", new.owner.roles), ("owner_admin", new.owner.is_admin)):
            values.update(encode_field(name, value))
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        row = self._one(
            f"INSERT INTO jobs ({columns}) VALUES ({marks}) RETURNING *", tuple(values.values())
        )
        assert row is not None
        return job_from_row(row)

    def charge_of(self, job_id: int) -> JobCharge | None:
        rows = self.fetch(CHARGE_OF, (job_id,))
        if not rows:
            return None
        # Only the latest round's reserve is open or closed now (a pause may have given an
        # earlier one back); the charge is the sum of every row.
        latest = max((row["l_round"] for row in rows if row["l_kind"] is not None), default=0)
        reserved = reserved_bonus = charged = charged_bonus = 0
        reserved_usd = 0.0
        created = decode_time(rows[0]["created_at"])
        final: Literal["settle", "refund"] | None = None
        for row in rows:
            kind = row["l_kind"]
            if kind is None:
                continue
            charged += row["l_credits"]
            charged_bonus += row["l_bonus"]
            if row["l_round"] != latest:
                continue
            if kind == "reserve":
                reserved, reserved_bonus, reserved_usd = row["l_credits"], row["l_bonus"], row["l_usd"]
                created = decode_time(row["l_at"])
            elif kind in ("settle", "refund"):
                final = kind
        assert created is not None
        return JobCharge(job_id=job_id, owner_key=rows[0]["owner_key"],
                         workspace_key=rows[0]["workspace_key"], created_at=created,
                         reserved=reserved,
                         reserved_bonus=reserved_bonus, reserved_usd=reserved_usd,
                         charged=charged, charged_bonus=charged_bonus, final=final,
                         reservation=latest)

    def record(self, entry: LedgerEntry, now: datetime) -> None:
        day, month = day_key(entry.charged_at), month_key(entry.charged_at)
        ledger: Statement = (
            """INSERT INTO ledger (kind, credits, bonus, usd, job_id, user_key, workspace_key,
                                   at, charged_at, day, month, note, reservation)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [entry.kind, entry.credits, entry.bonus, entry.usd, entry.job_id, entry.user_key,
             entry.workspace_key, encode_time(now), encode_time(entry.charged_at), day, month,
             entry.note, entry.reservation],
        )
        if entry.kind == "grant":
            self.execute(*ledger)
            self.execute(
                "UPDATE users SET bonus_credits = bonus_credits + ?, updated_at = ? WHERE key = ?",
                (entry.credits, encode_time(now), entry.user_key),
            )
            return
        if entry.bonus:
            self.execute(
                "UPDATE users SET bonus_credits = bonus_credits - ? WHERE key = ?",
                (entry.bonus, entry.user_key),
            )
        shard = shard_of(entry.user_key, self.dialect.shards)
        scopes = usage_keys(entry.user_key, entry.workspace_key, day, month, (shard,))
        marks = ", ".join("(?, ?, ?, ?, ?)" for _ in scopes)
        params: list[Any] = []
        for scope, key, period in scopes:
            params.extend((scope, key, period, entry.credits, entry.bonus))
        self.write_charge(ledger, (
            f"""INSERT INTO usage_totals (scope, key, period, credits, bonus) VALUES {marks}
                ON CONFLICT (scope, key, period) DO UPDATE SET
                  credits = usage_totals.credits + excluded.credits,
                  bonus = usage_totals.bonus + excluded.bonus""",
            params,
        ))

    def write_charge(self, ledger: Statement, totals: Statement) -> None:
        """A charge's ledger row, then the totals it moves (PostgreSQL: in one statement)."""
        self.execute(*ledger)
        self.execute(*totals)

    def lock_fal_slots(self) -> None:
        """Before counting the jobs at fal to take a slot: SQLite already has the whole
        file to itself (PostgreSQL's `PgTx` takes a lock here)."""

    def _job_update(self, job_id: int, changes: dict[str, Any], returning: str,
                    owner: str | None = None) -> Row:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"not updatable job fields: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values.update(encode_field(name, value))
        values["updated_at"] = encode_time(self._clock())
        assignments = ", ".join(f"{column} = ?" for column in values)
        # With `owner`: made only while that process holds the job's lease (the fence of a
        # process that may have lost it to another), in the same one statement.
        fence = " AND lease_owner = ?" if owner is not None else ""
        row = self._one(
            f"UPDATE jobs SET {assignments} WHERE id = ?{fence} RETURNING {returning}",
            (*values.values(), job_id, *((owner,) if owner is not None else ())),
        )
        if row is None:
            if owner is not None and self._one("SELECT id FROM jobs WHERE id = ?", (job_id,)):
                raise LeaseRefused(job_id)
            raise JobNotFound(job_id)
        return row

    def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        return job_from_row(self._job_update(job_id, changes, "*"))

    def update_held_job(self, owner: str, job_id: int, changes: dict[str, Any]) -> JobRecord:
        """update_job only while `owner` holds the job's lease, else LeaseRefused."""
        return job_from_row(self._job_update(job_id, changes, "*", owner))

    def set_job(self, job_id: int, **changes: Any) -> None:
        """update_job without reading the record back (settle and refund need no copy)."""
        self._job_update(job_id, changes, "id")

    # -- outside the ledger: one statement or two, each its own transaction in the store

    def set_user_field(self, user_key: str, column: Literal["tier", "blocked"], value: Any,
                       now: datetime) -> None:
        self.ensure_user_key(user_key, now)
        self.execute(f"UPDATE users SET {column} = ?, updated_at = ? WHERE key = ?",
                     (value, encode_time(now), user_key))

    def get_job(self, job_id: int) -> JobRecord | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else job_from_row(row)

    def list_jobs(self, owner_key: str, limit: int) -> list[JobRecord]:
        rows = self.fetch("SELECT * FROM jobs WHERE owner_key = ? ORDER BY id DESC LIMIT ?",
                          (owner_key, limit))
        return [job_from_row(r) for r in rows]

    def unfinished_jobs(self) -> list[JobRecord]:
        rows = self.fetch(f"SELECT * FROM jobs WHERE state NOT IN {FINAL_SQL} ORDER BY id")
        return [job_from_row(r) for r in rows]

    def claim_delivery(self, job_id: int, now: datetime) -> bool:
        cursor = self.execute(
            "UPDATE jobs SET delivered = 1, updated_at = ? WHERE id = ? AND delivered = 0",
            (encode_time(now), job_id),
        )
        return cursor.rowcount == 1

    def first_seen(self, event_id: str, now: datetime) -> bool:
        horizon = encode_time(now - timedelta(days=SEEN_EVENTS_KEEP_DAYS))
        self.execute("DELETE FROM seen_events WHERE seen_at < ?", (horizon,))
        cursor = self.execute(
            "INSERT INTO seen_events (event_id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (event_id, encode_time(now)),
        )
        return cursor.rowcount == 1

    # -- reports

    def ledger_rows(self, job_id: int | None) -> list[dict[str, Any]]:
        if job_id is None:
            rows = self.fetch("SELECT * FROM ledger ORDER BY id")
        else:
            rows = self.fetch("SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
        # Times as the codec writes them, whatever the backend hands back.
        return [{k: encode_time(v) if isinstance(v, datetime) else v for k, v in dict(r).items()}
                for r in rows]

    def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]:
        rows = self.fetch(_USAGE_BY_USER if by == "user" else _USAGE_BY_WORKSPACE,
                          (encode_time(since),))
        return [UsageRow(key=r["key"], name=r["name"], jobs=r["jobs"], credits=r["credits"],
                         usd=round(r["usd"], 6)) for r in rows]

    def schema_version(self) -> int:
        row = self._one(self.dialect.version_sql)
        return 0 if row is None else int(row["version"])


# A user's, its workspace's and the bot's usage (the shared rows summed over shards).
_USAGE = f"""SELECT
  (SELECT credits FROM usage_totals WHERE scope = 'user_day' AND key = :u AND period = :d) AS dc,
  (SELECT bonus FROM usage_totals WHERE scope = 'user_day' AND key = :u AND period = :d) AS db,
  (SELECT credits FROM usage_totals WHERE scope = 'user_month' AND key = :u AND period = :m) AS mc,
  (SELECT bonus FROM usage_totals WHERE scope = 'user_month' AND key = :u AND period = :m) AS mb,
  (SELECT SUM(credits) FROM usage_totals
    WHERE scope = 'ws_month' AND key = :w AND period IN {_shard_marks("ms")}) AS wc,
  (SELECT SUM(credits) FROM usage_totals
    WHERE scope = 'global_day' AND key = '{GLOBAL_KEY}' AND period IN {_shard_marks("ds")}) AS gc,
  (SELECT COUNT(*) FROM jobs WHERE owner_key = :u AND state NOT IN {FINAL_SQL}) AS running,
  (SELECT MAX(created_at) FROM jobs WHERE owner_key = :u) AS last_at,
  (SELECT bonus_credits FROM users WHERE key = :u) AS balance"""
# A job and its ledger rows (through the index ledger_job).
CHARGE_OF = """SELECT j.owner_key, j.workspace_key, j.created_at, l.kind AS l_kind,
                      l.credits AS l_credits, l.bonus AS l_bonus, l.usd AS l_usd,
                      l.reservation AS l_round, l.charged_at AS l_at
               FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id WHERE j.id = ?"""
_USAGE_BY_USER = """
    SELECT l.user_key AS key, COALESCE(u.name, l.user_key) AS name,
           COUNT(DISTINCT l.job_id) AS jobs, SUM(l.credits) AS credits, SUM(l.usd) AS usd
    FROM ledger l LEFT JOIN users u ON u.key = l.user_key
    WHERE l.kind != 'grant' AND l.charged_at >= ?
    GROUP BY l.user_key, u.name ORDER BY credits DESC, key"""
_USAGE_BY_WORKSPACE = """
    SELECT workspace_key AS key, workspace_key AS name,
           COUNT(DISTINCT job_id) AS jobs, SUM(credits) AS credits, SUM(usd) AS usd
    FROM ledger
    WHERE kind != 'grant' AND charged_at >= ? AND workspace_key IS NOT NULL
    GROUP BY workspace_key ORDER BY credits DESC, key"""

"""The store's queries on SQLite: every statement, each method a step of one transaction.

Only `?`/`:name` parameters, ON CONFLICT and RETURNING are used beyond plain SQL, all of
which PostgreSQL also has (with its own parameter marks), so a second dialect can share
most of this text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.model import JobRecord
from bot.ports import User

from .codec import (
    UPDATABLE_FIELDS,
    decode_time,
    encode_field,
    encode_time,
    job_from_row,
    user_from_row,
)
from .protocol import (
    Clock,
    JobCharge,
    JobNotFound,
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
SEEN_EVENTS_KEEP_DAYS = 2  # platforms stop retrying within hours


class SqliteTx:
    """Statements on a connection that is inside a transaction, on the database thread."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self.conn = conn
        self._clock = clock

    def _one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetch(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

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
               ON CONFLICT (key) DO UPDATE SET key = key
               RETURNING *""",
            (user_key, platform, platform_id, platform_id, encode_time(now), encode_time(now)),
        )
        assert row is not None
        return user_from_row(row)

    def get_user(self, user_key: str) -> UserRow | None:
        row = self._one("SELECT * FROM users WHERE key = ?", (user_key,))
        return None if row is None else user_from_row(row)

    def usage(self, user_key: str, workspace_key: str | None, at: datetime) -> UsageSnapshot:
        day, month = day_key(at), month_key(at)
        row = self._one(
            f"""SELECT
              (SELECT credits FROM usage_totals WHERE scope = 'user_day' AND key = :u AND period = :d) AS dc,
              (SELECT bonus FROM usage_totals WHERE scope = 'user_day' AND key = :u AND period = :d) AS db,
              (SELECT credits FROM usage_totals WHERE scope = 'user_month' AND key = :u AND period = :m) AS mc,
              (SELECT bonus FROM usage_totals WHERE scope = 'user_month' AND key = :u AND period = :m) AS mb,
              (SELECT credits FROM usage_totals WHERE scope = 'ws_month' AND key = :w AND period = :m) AS wc,
              (SELECT credits FROM usage_totals WHERE scope = 'global_day' AND key = '{GLOBAL_KEY}' AND period = :d) AS gc,
              (SELECT COUNT(*) FROM jobs WHERE owner_key = :u AND state NOT IN {FINAL_SQL}) AS running,
              (SELECT MAX(created_at) FROM jobs WHERE owner_key = :u) AS last_at,
              (SELECT bonus_credits FROM users WHERE key = :u) AS balance""",
            {"u": user_key, "d": day, "m": month, "w": workspace_key},
        )
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
        for name, value in (("place", new.place), ("input", new.input), ("state", new.state),
                            ("created_at", new.created_at), ("parent_id", new.parent_id),
                            ("parent_kind", new.parent_kind),
                            ("status_message", new.status_message),
                            ("interaction_expires_at", new.interaction_expires_at)):
            values.update(encode_field(name, value))
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        row = self._one(
            f"INSERT INTO jobs ({columns}) VALUES ({marks}) RETURNING *", tuple(values.values())
        )
        assert row is not None
        return job_from_row(row)

    def charge_of(self, job_id: int) -> JobCharge | None:
        rows = self.fetch(
            """SELECT j.owner_key, j.workspace_key, j.created_at, l.kind AS l_kind,
                      l.credits AS l_credits, l.bonus AS l_bonus, l.usd AS l_usd
               FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id WHERE j.id = ?""",
            (job_id,),
        )
        if not rows:
            return None
        reserved = reserved_bonus = charged = charged_bonus = 0
        reserved_usd = 0.0
        final: Literal["settle", "refund"] | None = None
        for row in rows:
            kind = row["l_kind"]
            if kind is None:
                continue
            charged += row["l_credits"]
            charged_bonus += row["l_bonus"]
            if kind == "reserve":
                reserved, reserved_bonus, reserved_usd = row["l_credits"], row["l_bonus"], row["l_usd"]
            elif kind in ("settle", "refund"):
                final = kind
        created = decode_time(rows[0]["created_at"])
        assert created is not None
        return JobCharge(job_id=job_id, owner_key=rows[0]["owner_key"],
                         workspace_key=rows[0]["workspace_key"], created_at=created,
                         reserved=reserved,
                         reserved_bonus=reserved_bonus, reserved_usd=reserved_usd,
                         charged=charged, charged_bonus=charged_bonus, final=final)

    def record(self, entry: LedgerEntry, now: datetime) -> None:
        day, month = day_key(entry.charged_at), month_key(entry.charged_at)
        self.conn.execute(
            """INSERT INTO ledger (kind, credits, bonus, usd, job_id, user_key, workspace_key,
                                   at, charged_at, day, month, note)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (entry.kind, entry.credits, entry.bonus, entry.usd, entry.job_id, entry.user_key,
             entry.workspace_key, encode_time(now), encode_time(entry.charged_at), day, month, entry.note),
        )
        if entry.kind == "grant":
            self.conn.execute(
                "UPDATE users SET bonus_credits = bonus_credits + ?, updated_at = ? WHERE key = ?",
                (entry.credits, encode_time(now), entry.user_key),
            )
            return
        if entry.bonus:
            self.conn.execute(
                "UPDATE users SET bonus_credits = bonus_credits - ? WHERE key = ?",
                (entry.bonus, entry.user_key),
            )
        scopes: list[tuple[str, str, str]] = [
            ("user_day", entry.user_key, day),
            ("user_month", entry.user_key, month),
            ("global_day", GLOBAL_KEY, day),
        ]
        if entry.workspace_key:
            scopes.append(("ws_month", entry.workspace_key, month))
        marks = ", ".join("(?, ?, ?, ?, ?)" for _ in scopes)
        params: list[Any] = []
        for scope, key, period in scopes:
            params.extend((scope, key, period, entry.credits, entry.bonus))
        self.conn.execute(
            f"""INSERT INTO usage_totals (scope, key, period, credits, bonus) VALUES {marks}
                ON CONFLICT (scope, key, period) DO UPDATE SET
                  credits = credits + excluded.credits, bonus = bonus + excluded.bonus""",
            params,
        )

    def _job_update(self, job_id: int, changes: dict[str, Any], returning: str) -> sqlite3.Row | None:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"not updatable job fields: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values.update(encode_field(name, value))
        values["updated_at"] = encode_time(self._clock())
        assignments = ", ".join(f"{column} = ?" for column in values)
        row = self._one(
            f"UPDATE jobs SET {assignments} WHERE id = ? RETURNING {returning}",
            (*values.values(), job_id),
        )
        if row is None:
            raise JobNotFound(job_id)
        return row

    def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        row = self._job_update(job_id, changes, "*")
        assert row is not None
        return job_from_row(row)

    def set_job(self, job_id: int, **changes: Any) -> None:
        """update_job without reading the record back (settle and refund need no copy)."""
        self._job_update(job_id, changes, "id")


    # -- outside the ledger: one statement or two, each its own transaction in the store

    def set_user_field(self, user_key: str, column: Literal["tier", "blocked"], value: Any,
                       now: datetime) -> None:
        self.ensure_user_key(user_key, now)
        self.conn.execute(f"UPDATE users SET {column} = ?, updated_at = ? WHERE key = ?",
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
        cursor = self.conn.execute(
            "UPDATE jobs SET delivered = 1, updated_at = ? WHERE id = ? AND delivered = 0",
            (encode_time(now), job_id),
        )
        return cursor.rowcount == 1

    def first_seen(self, event_id: str, now: datetime) -> bool:
        horizon = encode_time(now - timedelta(days=SEEN_EVENTS_KEEP_DAYS))
        self.conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (horizon,))
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
            (event_id, encode_time(now)),
        )
        return cursor.rowcount == 1

    # -- reports

    def ledger_rows(self, job_id: int | None) -> list[dict[str, Any]]:
        if job_id is None:
            rows = self.fetch("SELECT * FROM ledger ORDER BY id")
        else:
            rows = self.fetch("SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
        return [dict(r) for r in rows]

    def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]:
        rows = self.fetch(_USAGE_BY_USER if by == "user" else _USAGE_BY_WORKSPACE,
                          (encode_time(since),))
        return [UsageRow(key=r["key"], name=r["name"], jobs=r["jobs"], credits=r["credits"],
                         usd=round(r["usd"], 6)) for r in rows]

    def schema_version(self) -> int:
        return int(self.fetch("PRAGMA user_version")[0][0])


_USAGE_BY_USER = """
    SELECT l.user_key AS key, COALESCE(u.name, l.user_key) AS name,
           COUNT(DISTINCT l.job_id) AS jobs, SUM(l.credits) AS credits, SUM(l.usd) AS usd
    FROM ledger l LEFT JOIN users u ON u.key = l.user_key
    WHERE l.kind != 'grant' AND l.charged_at >= ?
    GROUP BY l.user_key ORDER BY credits DESC, key"""
_USAGE_BY_WORKSPACE = """
    SELECT workspace_key AS key, workspace_key AS name,
           COUNT(DISTINCT job_id) AS jobs, SUM(credits) AS credits, SUM(usd) AS usd
    FROM ledger
    WHERE kind != 'grant' AND charged_at >= ? AND workspace_key IS NOT NULL
    GROUP BY workspace_key ORDER BY credits DESC, key"""

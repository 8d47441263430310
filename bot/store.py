"""Durable state: users, jobs and the quota ledger in one SQLite file.

The ledger is the truth about money. Every credit movement is one row
(`reserve`, `settle`, `refund`, `grant`); `usage_totals` and
`users.bonus_credits` are kept beside it *in the same transaction* so that
quota checks read a handful of rows instead of summing the ledger.
`SqliteStore.audit()` recomputes both from the ledger and reports any
difference (there should never be one).

Ledger row meaning: `credits` is the signed change the row makes to the
amount charged for its job (reserve +estimate, settle real-estimate, refund
-estimate), so the credits of a job's rows sum to what the job costs now.
`bonus` is the part of `credits` drawn from (or given back to) the user's
granted credits. `charged_at`/`day`/`month` name the window the row counts
in: the job's reservation time, so a job settled after midnight still counts
against the day it was started. Grant rows carry the granted amount in
`credits` and do not count as usage.

Concurrency: one worker thread owns the connection and runs each transaction
whole (see `SqliteStore.run`), so transactions of different tasks never
interleave; every write transaction starts with BEGIN IMMEDIATE, which also
excludes other connections (other processes) on the same file, and
`busy_timeout` makes them wait instead of failing.

Why not aiosqlite (the design card named it): it crosses threads once per
statement (about 170 µs each on the reference machine, 16 crossings for one
job's admit + settle) and has no public way to run a transaction in one
crossing; this store crosses once per batch of transactions.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, get_args

from bot.model import JobRecord, JobState, ParentKind
from bot.ports import MessageRef, Place, User

Clock = Callable[[], datetime]
LedgerKind = Literal["reserve", "settle", "refund", "grant"]
UsageScope = Literal["user_day", "user_month", "ws_month", "global_day"]

FINAL_STATES: tuple[str, ...] = tuple(s.value for s in JobState if s.final)
_FINAL_SQL = "(" + ", ".join(f"'{s}'" for s in FINAL_STATES) + ")"
GLOBAL_KEY = "*"
BUSY_TIMEOUT_MS = 30_000


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobNotFound(LookupError):
    """No job with that id."""


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class UserRow:
    key: str
    name: str
    tier: str | None
    blocked: bool
    platform: str = ""
    platform_id: str = ""
    bonus_credits: int = 0  # granted credits not yet spent
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class NewJob:
    """What admission knows about a job before it exists."""

    owner: User
    place: Place
    endpoint_id: str
    input: dict[str, Any]
    estimate_credits: int
    estimate_usd: float
    created_at: datetime
    prompt: str = ""
    parent_id: int | None = None
    parent_kind: ParentKind | None = None
    status_message: MessageRef | None = None
    interaction_token: str | None = None
    interaction_expires_at: datetime | None = None
    state: JobState = JobState.ACCEPTED


@dataclass(frozen=True)
class LedgerEntry:
    kind: LedgerKind
    credits: int
    user_key: str
    charged_at: datetime  # the window the row counts in (see module docstring)
    bonus: int = 0
    usd: float = 0.0
    job_id: int | None = None
    workspace_key: str | None = None
    note: str = ""


@dataclass(frozen=True)
class UsageSnapshot:
    """Everything admission needs about one user at one instant (one query)."""

    day_credits: int  # all credits charged in the day window (granted part included)
    day_bonus: int  # of which drawn from granted credits
    month_credits: int
    month_bonus: int
    workspace_month_credits: int
    global_day_credits: int
    running_jobs: int
    last_job_at: datetime | None
    bonus_balance: int

    @property
    def day_regular(self) -> int:
        return self.day_credits - self.day_bonus

    @property
    def month_regular(self) -> int:
        return self.month_credits - self.month_bonus


@dataclass(frozen=True)
class JobCharge:
    """A job's ledger state: what was reserved and how it was closed, if it was."""

    job_id: int
    owner_key: str
    workspace_key: str | None
    created_at: datetime  # the reservation time: the window settle/refund rows count in
    reserved: int
    reserved_bonus: int
    reserved_usd: float
    charged: int  # sum of the job's ledger credits = what it costs now
    charged_bonus: int
    final: Literal["settle", "refund"] | None


@dataclass(frozen=True)
class UsageRow:
    key: str
    name: str
    jobs: int
    credits: int
    usd: float


def day_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def month_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def workspace_key_of(place: Place) -> str | None:
    """Budgets apply per guild/workspace; direct messages have none."""
    return f"{place.platform}:{place.workspace}" if place.workspace else None


# ---------------------------------------------------------------- encoding


def _ts(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times must be timezone-aware (UTC)")
    # One fixed format so that text comparison in SQL is time comparison.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _ts_opt(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _json_default(value: Any) -> Any:
    # MessageRef.extra may hold an interaction expiry; keep it a datetime on the way back.
    if isinstance(value, datetime):
        return {"$dt": _ts(value)}
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    return obj


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text, object_hook=_json_hook)


def _ref_json(ref: MessageRef | None) -> str | None:
    if ref is None:
        return None
    if not isinstance(ref, MessageRef):
        raise ValueError("a message reference must be a MessageRef")
    return _dumps({"platform": ref.platform, "channel": ref.channel, "id": ref.id, "extra": ref.extra})


def _ref(text: str | None) -> MessageRef | None:
    data = _loads(text)
    if data is None:
        return None
    return MessageRef(platform=data["platform"], channel=data["channel"], id=data["id"],
                      extra=data.get("extra") or {})


# JobRecord field -> how it is written: a list of (column, value) pairs.
def _encode_field(name: str, value: Any) -> list[tuple[str, Any]]:
    if name == "place":
        if not isinstance(value, Place):
            raise ValueError("place must be a Place")
        return [("place_platform", value.platform), ("workspace", value.workspace),
                ("channel", value.channel), ("thread", value.thread),
                ("workspace_key", workspace_key_of(value))]
    if name in ("input", "result"):
        return [(f"{name}_json", None if value is None else _dumps(value))]
    if name in ("status_message", "result_message"):
        return [(f"{name}_json", _ref_json(value))]
    if name == "state":
        return [("state", JobState(value).value)]
    if name == "parent_kind":
        if value is not None and value not in get_args(ParentKind):
            raise ValueError(f"parent_kind must be one of {get_args(ParentKind)}")
        return [("parent_kind", value)]
    if name in _DATETIME_FIELDS:
        if value is not None and not isinstance(value, datetime):
            raise ValueError(f"{name} must be a datetime")
        return [(name, _ts_opt(value))]
    if name == "progress" and value is not None:
        return [(name, float(value))]
    return [(name, value)]


_DATETIME_FIELDS = frozenset(
    {"created_at", "updated_at", "interaction_expires_at", "finished_at", "started_at"}
)
JOB_FIELDS = frozenset(f.name for f in fields(JobRecord))
# `id` is the key and `updated_at` is always the store's clock.
UPDATABLE_FIELDS = JOB_FIELDS - {"id", "updated_at"}


def _job_from_row(row: sqlite3.Row) -> JobRecord:
    created = _dt(row["created_at"])
    updated = _dt(row["updated_at"])
    assert created is not None and updated is not None
    return JobRecord(
        id=row["id"],
        owner_platform=row["owner_platform"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"],
        place=Place(platform=row["place_platform"], channel=row["channel"],
                    workspace=row["workspace"], thread=row["thread"]),
        endpoint_id=row["endpoint_id"],
        input=_loads(row["input_json"]),
        state=JobState(row["state"]),
        estimate_credits=row["estimate_credits"],
        estimate_usd=row["estimate_usd"],
        created_at=created,
        updated_at=updated,
        prompt=row["prompt"],
        settled_credits=row["settled_credits"],
        settled_usd=row["settled_usd"],
        fal_request_id=row["fal_request_id"],
        local_position=row["local_position"],
        queue_position=row["queue_position"],
        progress=row["progress"],
        status_message=_ref(row["status_message_json"]),
        result_message=_ref(row["result_message_json"]),
        interaction_token=row["interaction_token"],
        interaction_expires_at=_dt(row["interaction_expires_at"]),
        result_url=row["result_url"],
        result_size=row["result_size"],
        result=_loads(row["result_json"]),
        error_type=row["error_type"],
        error_message=row["error_message"],
        finished_at=_dt(row["finished_at"]),
        started_at=_dt(row["started_at"]),
        parent_id=row["parent_id"],
        parent_kind=row["parent_kind"],
    )


def _user_from_row(row: sqlite3.Row) -> UserRow:
    return UserRow(key=row["key"], name=row["name"], tier=row["tier"],
                   blocked=bool(row["blocked"]), platform=row["platform"],
                   platform_id=row["platform_id"], bonus_credits=row["bonus_credits"],
                   created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]))


# ---------------------------------------------------------------- schema

_STATES_SQL = "(" + ", ".join(f"'{s.value}'" for s in JobState) + ")"

# Each entry moves the schema one version forward; PRAGMA user_version records
# how many have run. Never edit a released entry: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: users, jobs, ledger (balances summed from the ledger)
    (
        """CREATE TABLE users (
            key TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            platform_id TEXT NOT NULL,
            name TEXT NOT NULL,
            tier TEXT,
            blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
            bonus_credits INTEGER NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        f"""CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner_key TEXT NOT NULL REFERENCES users(key),
            owner_platform TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            owner_name TEXT NOT NULL,
            place_platform TEXT NOT NULL,
            workspace TEXT,
            channel TEXT NOT NULL,
            thread TEXT,
            workspace_key TEXT,
            endpoint_id TEXT NOT NULL,
            input_json TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN {_STATES_SQL}),
            estimate_credits INTEGER NOT NULL CHECK (estimate_credits >= 0),
            estimate_usd REAL NOT NULL,
            settled_credits INTEGER,
            settled_usd REAL,
            fal_request_id TEXT,
            local_position INTEGER,
            queue_position INTEGER,
            progress REAL,
            status_message_json TEXT,
            result_message_json TEXT,
            interaction_token TEXT,
            interaction_expires_at TEXT,
            result_url TEXT,
            result_size INTEGER,
            result_json TEXT,
            error_type TEXT,
            error_message TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            parent_id INTEGER REFERENCES jobs(id),
            parent_kind TEXT CHECK (parent_kind IN ('reroll', 'extend', 'continue')),
            delivered INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
        )""",
        "CREATE INDEX jobs_owner_created ON jobs(owner_key, created_at)",
        f"CREATE INDEX jobs_owner_unfinished ON jobs(owner_key) WHERE state NOT IN {_FINAL_SQL}",
        f"CREATE INDEX jobs_unfinished ON jobs(id) WHERE state NOT IN {_FINAL_SQL}",
        """CREATE TABLE ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('reserve', 'settle', 'refund', 'grant')),
            credits INTEGER NOT NULL,
            bonus INTEGER NOT NULL DEFAULT 0,
            usd REAL NOT NULL DEFAULT 0,
            job_id INTEGER REFERENCES jobs(id),
            user_key TEXT NOT NULL REFERENCES users(key),
            workspace_key TEXT,
            at TEXT NOT NULL,
            charged_at TEXT NOT NULL,
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            CHECK ((kind = 'grant') = (job_id IS NULL))
        )""",
        # The database itself refuses a second reservation or a second closing row.
        "CREATE UNIQUE INDEX ledger_one_reserve ON ledger(job_id) WHERE kind = 'reserve'",
        "CREATE UNIQUE INDEX ledger_one_final ON ledger(job_id) WHERE kind IN ('settle', 'refund')",
        "CREATE INDEX ledger_user_day ON ledger(user_key, day)",
        "CREATE INDEX ledger_charged_at ON ledger(charged_at)",
    ),
    # 2: per-window totals kept beside the ledger, backfilled from it
    (
        """CREATE TABLE usage_totals (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            period TEXT NOT NULL,
            credits INTEGER NOT NULL DEFAULT 0,
            bonus INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, key, period)
        ) WITHOUT ROWID""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'user_day', user_key, day, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY user_key, day""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'user_month', user_key, month, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY user_key, month""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'ws_month', workspace_key, month, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' AND workspace_key IS NOT NULL GROUP BY workspace_key, month""",
        f"""INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'global_day', '{GLOBAL_KEY}', day, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY day""",
    ),
    # 3: platform events already handled, so a retried delivery (Slack re-sends events it
    # thinks were missed) never starts a second job, also across a restart.
    (
        """CREATE TABLE seen_events (
            event_id TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
SEEN_EVENTS_KEEP_DAYS = 2  # platforms stop retrying within hours


def _migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Run every migration the file has not seen, each in its own IMMEDIATE transaction."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read under the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {version} is newer than this code "
                    f"({len(MIGRATIONS)}); upgrade ltx-bot"
                )
            if version >= target:
                conn.execute("COMMIT")
                return version
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # user_version lives in the file header and commits with the transaction.
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes opening a fresh file at once can get SQLITE_BUSY here
    without SQLite ever calling its busy handler (measured: 14 of 300 simultaneous opens),
    so this one statement waits and retries itself within the same budget."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # on the opening thread, never the event loop
        delay = min(delay * 2, 0.2)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN ourselves (sqlite3's implicit BEGIN is DEFERRED).
    # check_same_thread=False: the connection is opened on the loop's thread and then used
    # only by the store's one worker thread.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _set_wal(conn)
    # WAL + NORMAL survives application crashes; only an OS crash/power loss may
    # lose the last commits, and never corrupts the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


# ---------------------------------------------------------------- protocols


class LedgerTx(Protocol):
    """Statements on a connection inside one transaction. Synchronous on purpose: a
    whole transaction runs as one call on the database thread (see `SqliteStore.run`)."""

    def upsert_user(self, user: User, now: datetime) -> UserRow: ...
    def get_user(self, user_key: str) -> UserRow | None: ...
    def ensure_user_key(self, user_key: str, now: datetime) -> UserRow: ...
    def usage(self, user_key: str, workspace_key: str | None, at: datetime) -> UsageSnapshot: ...
    def insert_job(self, new: NewJob) -> JobRecord: ...
    def charge_of(self, job_id: int) -> JobCharge | None: ...
    def record(self, entry: LedgerEntry, now: datetime) -> None: ...
    def update_job(self, job_id: int, **changes: Any) -> JobRecord: ...
    def set_job(self, job_id: int, **changes: Any) -> None: ...


T = TypeVar("T")


class Store(Protocol):
    async def close(self) -> None: ...
    async def ensure_user(self, user: User) -> UserRow: ...
    async def get_user(self, user_key: str) -> UserRow | None: ...
    async def set_tier(self, user_key: str, tier: str | None) -> None: ...
    async def set_blocked(self, user_key: str, blocked: bool) -> None: ...
    async def get_job(self, job_id: int) -> JobRecord | None: ...
    async def update_job(self, job_id: int, **changes: Any) -> JobRecord: ...
    async def list_jobs(self, owner_key: str, limit: int = 10) -> list[JobRecord]: ...
    async def unfinished_jobs(self) -> list[JobRecord]: ...
    async def claim_delivery(self, job_id: int) -> bool: ...
    async def first_seen(self, event_id: str) -> bool: ...
    async def run(self, body: Callable[[LedgerTx], T], *, write: bool = True) -> T: ...
    async def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]: ...
    async def audit(self) -> list[str]: ...


# ---------------------------------------------------------------- SQLite


class SqliteTx:
    """Statements on a connection that is inside a transaction, on the database thread."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock) -> None:
        self.conn = conn
        self._clock = clock

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
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
            (user.key, user.platform, user.id, user.name or user.id, _ts(now), _ts(now)),
        )
        assert row is not None
        return _user_from_row(row)

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
            (user_key, platform, platform_id, platform_id, _ts(now), _ts(now)),
        )
        assert row is not None
        return _user_from_row(row)

    def get_user(self, user_key: str) -> UserRow | None:
        row = self._one("SELECT * FROM users WHERE key = ?", (user_key,))
        return None if row is None else _user_from_row(row)

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
              (SELECT COUNT(*) FROM jobs WHERE owner_key = :u AND state NOT IN {_FINAL_SQL}) AS running,
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
            last_job_at=_dt(row["last_at"]), bonus_balance=row["balance"] or 0,
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
            "updated_at": _ts(new.created_at),
        }
        for name, value in (("place", new.place), ("input", new.input), ("state", new.state),
                            ("created_at", new.created_at), ("parent_id", new.parent_id),
                            ("parent_kind", new.parent_kind),
                            ("status_message", new.status_message),
                            ("interaction_expires_at", new.interaction_expires_at)):
            values.update(_encode_field(name, value))
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        row = self._one(
            f"INSERT INTO jobs ({columns}) VALUES ({marks}) RETURNING *", tuple(values.values())
        )
        assert row is not None
        return _job_from_row(row)

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
        created = _dt(rows[0]["created_at"])
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
             entry.workspace_key, _ts(now), _ts(entry.charged_at), day, month, entry.note),
        )
        if entry.kind == "grant":
            self.conn.execute(
                "UPDATE users SET bonus_credits = bonus_credits + ?, updated_at = ? WHERE key = ?",
                (entry.credits, _ts(now), entry.user_key),
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
            values.update(_encode_field(name, value))
        values["updated_at"] = _ts(self._clock())
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
        return _job_from_row(row)

    def set_job(self, job_id: int, **changes: Any) -> None:
        """update_job without reading the record back (settle and refund need no copy)."""
        self._job_update(job_id, changes, "id")


@dataclass
class _Call:
    body: Callable[[SqliteTx], Any]
    write: bool
    future: asyncio.Future[Any]


class SqliteStore:
    """The Store on one SQLite file. Open with `open_store`.

    All database work happens on one worker thread that owns the connection.
    Each `run(body)` is one whole transaction executed as a single call there,
    and calls that pile up while the thread is busy go over together in one
    hand-off and one commit: on a busy bot the cost of crossing threads and of
    committing, not SQL, is what limits throughput (about 170 µs a crossing
    here, against tens of µs of SQL per statement). Each body runs in its own
    savepoint, so one failing body never rolls back another.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock = utc_now) -> None:
        self._conn = conn
        self.path = path
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltx-store")
        self._pending: list[_Call] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing

    async def run(self, body: Callable[[SqliteTx], T], *, write: bool = True) -> T:
        """Run `body` in one transaction (BEGIN IMMEDIATE when `write`) on the database
        thread and return its result; an exception in `body` rolls back and is raised here.
        IMMEDIATE takes the file's write lock at once, so other processes on the same
        file are excluded too (busy_timeout makes them wait, not fail)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        call = _Call(body, write, loop.create_future())
        self._pending.append(call)
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        result: T = await call.future
        return result

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                # A caller cancelled before its turn never runs; once handed over it completes.
                batch = [c for c in self._pending if not c.future.done()]
                self._pending = []
                if not batch:
                    continue
                try:
                    outcomes = await loop.run_in_executor(
                        self._executor, self._run_batch, [(c.body, c.write) for c in batch])
                except BaseException as exc:
                    # Never leave a caller waiting forever on a future nobody will set.
                    for call in batch:
                        if not call.future.done():
                            call.future.set_exception(RuntimeError(f"store worker failed: {exc!r}"))
                    raise
                for call, (ok, value) in zip(batch, outcomes, strict=True):
                    if call.future.done():
                        continue
                    if ok:
                        call.future.set_result(value)
                    else:
                        call.future.set_exception(value)
        finally:
            self._drainer = None

    def _run_batch(self, batch: list[tuple[Callable[[SqliteTx], Any], bool]]) -> list[tuple[bool, Any]]:
        # Group commit: the batch shares one transaction and each body gets a savepoint,
        # so a failing body undoes only its own writes. Nobody hears "done" before the
        # COMMIT, so what a caller was told is exactly what is on disk.
        outcomes: list[tuple[bool, Any]] = []
        tx = SqliteTx(self._conn, self.clock)
        conn = self._conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE" if any(write for _, write in batch) else "BEGIN")
            for body, _write in batch:
                conn.execute("SAVEPOINT body")
                try:
                    value = body(tx)
                except Exception as exc:
                    conn.execute("ROLLBACK TO body")
                    conn.execute("RELEASE body")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE body")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, exc)] * len(batch)
        return outcomes

    async def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return await self.run(lambda tx: tx.fetch(sql, params), write=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._drainer is not None:
            await asyncio.shield(self._drainer)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    async def schema_version(self) -> int:
        rows = await self._read("PRAGMA user_version")
        return int(rows[0][0])

    # -- users

    async def ensure_user(self, user: User) -> UserRow:
        now = self.clock()
        return await self.run(lambda tx: tx.upsert_user(user, now))

    async def get_user(self, user_key: str) -> UserRow | None:
        return await self.run(lambda tx: tx.get_user(user_key), write=False)

    async def set_tier(self, user_key: str, tier: str | None) -> None:
        await self._set_user(user_key, "tier", tier)

    async def set_blocked(self, user_key: str, blocked: bool) -> None:
        await self._set_user(user_key, "blocked", int(blocked))

    async def _set_user(self, user_key: str, column: Literal["tier", "blocked"], value: Any) -> None:
        now = self.clock()

        def body(tx: SqliteTx) -> None:
            tx.ensure_user_key(user_key, now)
            tx.conn.execute(f"UPDATE users SET {column} = ?, updated_at = ? WHERE key = ?",
                            (value, _ts(now), user_key))

        await self.run(body)

    # -- jobs

    async def get_job(self, job_id: int) -> JobRecord | None:
        rows = await self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(rows[0]) if rows else None

    async def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        return await self.run(lambda tx: tx.update_job(job_id, **changes))

    async def list_jobs(self, owner_key: str, limit: int = 10) -> list[JobRecord]:
        rows = await self._read(
            "SELECT * FROM jobs WHERE owner_key = ? ORDER BY id DESC LIMIT ?", (owner_key, limit)
        )
        return [_job_from_row(r) for r in rows]

    async def unfinished_jobs(self) -> list[JobRecord]:
        rows = await self._read(f"SELECT * FROM jobs WHERE state NOT IN {_FINAL_SQL} ORDER BY id")
        return [_job_from_row(r) for r in rows]

    async def first_seen(self, event_id: str) -> bool:
        """True the first time a platform event id is offered, False for every repeat."""
        now = self.clock()
        horizon = _ts(now - timedelta(days=SEEN_EVENTS_KEEP_DAYS))

        def body(tx: SqliteTx) -> bool:
            tx.conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (horizon,))
            cursor = tx.conn.execute(
                "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)",
                (event_id, _ts(now)),
            )
            return cursor.rowcount == 1

        return await self.run(body)

    async def claim_delivery(self, job_id: int) -> bool:
        now = _ts(self.clock())

        def body(tx: SqliteTx) -> bool:
            cursor = tx.conn.execute(
                "UPDATE jobs SET delivered = 1, updated_at = ? WHERE id = ? AND delivered = 0",
                (now, job_id),
            )
            return cursor.rowcount == 1

        return await self.run(body)

    # -- ledger reports

    async def ledger_rows(self, job_id: int | None = None) -> list[dict[str, Any]]:
        """Raw ledger rows, oldest first (admin export, tests)."""
        if job_id is None:
            rows = await self._read("SELECT * FROM ledger ORDER BY id")
        else:
            rows = await self._read("SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
        return [dict(r) for r in rows]

    async def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]:
        """Jobs, credits and USD per user or workspace for jobs started since `since`."""
        if by == "user":
            rows = await self._read(
                """SELECT l.user_key AS key, COALESCE(u.name, l.user_key) AS name,
                          COUNT(DISTINCT l.job_id) AS jobs, SUM(l.credits) AS credits,
                          SUM(l.usd) AS usd
                   FROM ledger l LEFT JOIN users u ON u.key = l.user_key
                   WHERE l.kind != 'grant' AND l.charged_at >= ?
                   GROUP BY l.user_key ORDER BY credits DESC, key""",
                (_ts(since),),
            )
        else:
            rows = await self._read(
                """SELECT workspace_key AS key, workspace_key AS name,
                          COUNT(DISTINCT job_id) AS jobs, SUM(credits) AS credits, SUM(usd) AS usd
                   FROM ledger
                   WHERE kind != 'grant' AND charged_at >= ? AND workspace_key IS NOT NULL
                   GROUP BY workspace_key ORDER BY credits DESC, key""",
                (_ts(since),),
            )
        return [UsageRow(key=r["key"], name=r["name"], jobs=r["jobs"], credits=r["credits"],
                         usd=round(r["usd"], 6)) for r in rows]

    async def audit(self) -> list[str]:
        """Differences between the ledger and what is kept beside it; [] when consistent."""
        return await self.run(_audit, write=False)


def _audit(tx: SqliteTx) -> list[str]:
    problems: list[str] = []
    derived: dict[tuple[str, str, str], tuple[int, int]] = {}
    queries: Iterable[tuple[str, str]] = (
        ("user_day", "SELECT user_key, day, SUM(credits), SUM(bonus) FROM ledger WHERE kind != 'grant' GROUP BY 1, 2"),
        ("user_month", "SELECT user_key, month, SUM(credits), SUM(bonus) FROM ledger WHERE kind != 'grant' GROUP BY 1, 2"),
        ("ws_month", "SELECT workspace_key, month, SUM(credits), SUM(bonus) FROM ledger WHERE kind != 'grant' AND workspace_key IS NOT NULL GROUP BY 1, 2"),
        ("global_day", f"SELECT '{GLOBAL_KEY}', day, SUM(credits), SUM(bonus) FROM ledger WHERE kind != 'grant' GROUP BY 1, 2"),
    )
    for scope, sql in queries:
        for key, period, credits, bonus in tx.fetch(sql):
            derived[(scope, key, period)] = (credits, bonus)
    kept = {(r[0], r[1], r[2]): (r[3], r[4]) for r in tx.fetch(
        "SELECT scope, key, period, credits, bonus FROM usage_totals")}
    for where in sorted(set(derived) | set(kept)):
        a, b = derived.get(where, (0, 0)), kept.get(where, (0, 0))
        if a != b:
            problems.append(f"usage {where}: ledger says {a}, totals say {b}")
    for key, kept_bonus, from_ledger in tx.fetch(
        """SELECT u.key, u.bonus_credits,
                  COALESCE((SELECT SUM(CASE WHEN kind = 'grant' THEN credits ELSE -bonus END)
                            FROM ledger l WHERE l.user_key = u.key), 0)
           FROM users u"""
    ):
        if kept_bonus != from_ledger:
            problems.append(f"granted credits of {key}: ledger says {from_ledger}, users says {kept_bonus}")
    for job_id, charged, settled, estimate, kinds in tx.fetch(
        """SELECT j.id, COALESCE(SUM(l.credits), 0), j.settled_credits, j.estimate_credits,
                  COALESCE(GROUP_CONCAT(l.kind), '')
           FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id GROUP BY j.id"""
    ):
        closed = {k for k in kinds.split(",") if k in ("settle", "refund")}
        expected = (settled if "settle" in closed else 0 if "refund" in closed
                    else estimate)
        if "reserve" not in kinds.split(","):
            problems.append(f"job {job_id}: no reservation")
        elif charged != expected:
            problems.append(f"job {job_id}: ledger charges {charged}, job says {expected}")
    return problems


def _open(file: Path) -> sqlite3.Connection:
    conn = _connect(file)
    try:
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


async def open_store(path: str | Path, *, clock: Clock = utc_now) -> SqliteStore:
    """Open (creating if needed) the SQLite file and bring its schema up to date."""
    file = Path(path)
    # Opening may wait on another process's migration (busy_timeout): keep it off the loop.
    conn = await asyncio.to_thread(_open, file)
    return SqliteStore(conn, file, clock)

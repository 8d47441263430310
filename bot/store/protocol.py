"""What the rest of the bot may know about the store: the `Store` and `LedgerTx`
protocols, the records they speak, and the window keys quotas count in.

The ledger is the truth about money. Every credit movement is one row
(`reserve`, `settle`, `refund`, `grant`); per-window usage totals and each user's
granted balance are kept beside it *in the same transaction* so that quota
checks read a handful of rows instead of summing the ledger. `Store.audit()`
recomputes both from the ledger and reports any difference (there should never
be one).

Ledger row meaning: `credits` is the signed change the row makes to the amount
charged for its job (reserve +estimate, settle real-estimate, refund -estimate),
so the credits of a job's rows sum to what the job costs now. `bonus` is the part
of `credits` drawn from (or given back to) the user's granted credits.
`charged_at` names the window the row counts in: the job's reservation time, so a
job settled after midnight still counts against the day it was started. Grant
rows carry the granted amount in `credits` and do not count as usage.

Nothing here names a database: Quota, JobRunner and the command core depend on
these protocols only, and the SQLite and PostgreSQL stores both implement them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from bot.model import JobRecord, JobState, ParentKind
from bot.ports import MessageRef, Place, User

from .pauses import PauseStore

if TYPE_CHECKING:
    from .leases import Lease, Renewal

Clock = Callable[[], datetime]
LedgerKind = Literal["reserve", "settle", "refund", "grant"]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobNotFound(LookupError):
    """No job with that id."""


class LeaseRefused(Exception):
    """Another process holds the job's lease now: this one's write was not made."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class UserRow:
    """A user as the store keeps them: tier, block and granted credits beside the name."""

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
    """One credit movement, as written to the ledger (see the module docstring)."""

    kind: LedgerKind
    credits: int
    user_key: str
    charged_at: datetime  # the window the row counts in (see module docstring)
    bonus: int = 0
    usd: float = 0.0
    job_id: int | None = None
    workspace_key: str | None = None
    note: str = ""
    reservation: int = 0  # a job's round: its reserve and the row that closes it


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
    final: Literal["settle", "refund"] | None  # of the latest reservation round
    reservation: int = 0  # the latest round (a job reserves again after a pause)


@dataclass(frozen=True)
class UsageRow:
    """One line of a usage report: a user's or a workspace's jobs and spending."""

    key: str
    name: str
    jobs: int
    credits: int
    usd: float


# ---------------------------------------------------------------- window keys


def day_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def month_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def workspace_key_of(place: Place) -> str | None:
    """Budgets apply per guild/workspace; direct messages have none."""
    return f"{place.platform}:{place.workspace}" if place.workspace else None


# ---------------------------------------------------------------- protocols


class LedgerTx(Protocol):
    """Statements inside one transaction. Synchronous on purpose: a whole transaction
    runs as one call on the database's side (see `Store.run`), so quota decisions
    are made with nothing interleaved."""

    def upsert_user(self, user: User, now: datetime) -> UserRow: ...
    def get_user(self, user_key: str) -> UserRow | None: ...
    def ensure_user_key(self, user_key: str, now: datetime) -> UserRow: ...
    def usage(self, user_key: str, workspace_key: str | None, at: datetime, *,
              limited: Collection[str] | None = None) -> UsageSnapshot: ...
    def insert_job(self, new: NewJob) -> JobRecord: ...
    def charge_of(self, job_id: int) -> JobCharge | None: ...
    def record(self, entry: LedgerEntry, now: datetime) -> None: ...
    def update_job(self, job_id: int, **changes: Any) -> JobRecord: ...
    def update_held_job(self, owner: str, job_id: int, changes: dict[str, Any]) -> JobRecord: ...
    def get_job(self, job_id: int) -> JobRecord | None: ...
    def set_job(self, job_id: int, **changes: Any) -> None: ...


class Store(PauseStore, Protocol):
    """Durable users, jobs and the quota ledger, shared by every process of the bot.

    `run(body)` runs `body` as one whole transaction (a write transaction when
    `write`) and returns its result; an exception in `body` rolls it back and is
    raised to the caller. `lease` is this process's job lease once it registered.
    """

    lease: Lease | None

    async def close(self) -> None: ...
    async def ensure_user(self, user: User) -> UserRow: ...
    async def get_user(self, user_key: str) -> UserRow | None: ...
    async def set_tier(self, user_key: str, tier: str | None) -> None: ...
    async def set_blocked(self, user_key: str, blocked: bool) -> None: ...
    async def get_job(self, job_id: int) -> JobRecord | None: ...
    async def update_job(self, job_id: int, **changes: Any) -> JobRecord: ...
    async def update_held_job(self, job_id: int, **changes: Any) -> JobRecord: ...
    async def list_jobs(self, owner_key: str, limit: int = 10) -> list[JobRecord]: ...
    async def unfinished_jobs(self) -> list[JobRecord]: ...
    async def claim_delivery(self, job_id: int) -> bool: ...
    async def register_instance(self, instance: str, *, host: str, pid: int,
                                platforms: list[str], lease_seconds: float) -> None: ...
    async def renew_leases(self, platforms: list[str]) -> Renewal: ...
    async def adoptable_jobs(self, platforms: list[str]) -> list[JobRecord]: ...
    async def adopt_job(self, job_id: int) -> bool: ...
    async def holds_lease(self, job_id: int, hold: float = 0.0) -> bool: ...
    async def take_fal_slot(self, job_id: int, limit: int, hold: float = 0.0) -> bool: ...
    async def lease_holder(self, job_id: int) -> str | None: ...
    async def request_cancel(self, job_id: int, by: str) -> bool: ...
    async def release_leases(self, owner: str | None = None) -> None: ...
    async def instances_on(self, host: str) -> list[tuple[str, int]]: ...
    async def first_seen(self, event_id: str) -> bool: ...
    async def run(self, body: Callable[[LedgerTx], T], *, write: bool = True) -> T: ...
    async def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]: ...
    async def audit(self) -> list[str]: ...

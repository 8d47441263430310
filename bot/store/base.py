"""What both SQL stores do the same way: every `Store` method as one transaction of
the shared queries, given to the backend's `run`.

A backend (`SqliteStore`, `PgStore`) brings only `run`, `close` and where it is;
the methods here are the same on both, so they behave the same on both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.model import JobRecord
from bot.ports import User

from . import leases
from .audit import audit
from .leases import Lease, Renewal
from .pauses import PauseMethods
from .protocol import Clock, T, UsageRow, UserRow
from .queries import SqlTx
from .schema import SCHEMA_VERSION


@dataclass(frozen=True)
class StoreHealth:
    """What `ltx-bot health` reports about a store that opened."""

    backend: Literal["sqlite", "postgresql"]
    where: str  # the file, or the server and database (never a password)
    schema_version: int
    latest_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return self.schema_version == self.latest_version


class SqlStore(PauseMethods, ABC):
    """The Store on a SQL database; a subclass runs the transactions (see `run`)."""

    clock: Clock
    # This process's lease once it registered (`register_instance`); None for a store
    # opened by a tool that drives no job.
    lease: Lease | None = None

    @abstractmethod
    async def run(self, body: Callable[[SqlTx], T], *, write: bool = True) -> T:
        """Run `body` as one whole transaction and return its result; an exception in
        `body` rolls it back and is raised here."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> tuple[Literal["sqlite", "postgresql"], str]:
        """(backend, where): the file, or the server and database without a password."""

    async def _read(self, body: Callable[[SqlTx], T]) -> T:
        return await self.run(body, write=False)

    async def schema_version(self) -> int:
        return await self._read(lambda tx: tx.schema_version())

    async def health(self) -> StoreHealth:
        """The store answers, and at which schema version (raises when it does not answer)."""
        backend, where = self.describe()
        return StoreHealth(backend, where, await self.schema_version())

    # -- users

    async def ensure_user(self, user: User) -> UserRow:
        now = self.clock()
        return await self.run(lambda tx: tx.upsert_user(user, now))

    async def get_user(self, user_key: str) -> UserRow | None:
        return await self._read(lambda tx: tx.get_user(user_key))

    async def set_tier(self, user_key: str, tier: str | None) -> None:
        await self._set_user(user_key, "tier", tier)

    async def set_blocked(self, user_key: str, blocked: bool) -> None:
        await self._set_user(user_key, "blocked", int(blocked))

    async def _set_user(self, user_key: str, column: Literal["tier", "blocked"], value: Any) -> None:
        now = self.clock()
        await self.run(lambda tx: tx.set_user_field(user_key, column, value, now))

    # -- jobs

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._read(lambda tx: tx.get_job(job_id))

    async def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        return await self.run(lambda tx: tx.update_job(job_id, **changes))

    async def update_held_job(self, job_id: int, **changes: Any) -> JobRecord:
        """update_job fenced by this process's lease (one conditional UPDATE): raises
        LeaseRefused when another process took the job over. Without a lease (a process
        that never registered) it is update_job."""
        lease = self.lease
        if lease is None:
            return await self.update_job(job_id, **changes)
        return await self.run(lambda tx: tx.update_held_job(lease.owner, job_id, changes))

    async def list_jobs(self, owner_key: str, limit: int = 10) -> list[JobRecord]:
        return await self._read(lambda tx: tx.list_jobs(owner_key, limit))

    async def unfinished_jobs(self) -> list[JobRecord]:
        return await self._read(lambda tx: tx.unfinished_jobs())

    async def first_seen(self, event_id: str) -> bool:
        """True the first time a platform event id is offered, False for every repeat."""
        now = self.clock()
        return await self.run(lambda tx: tx.first_seen(event_id, now))

    async def claim_delivery(self, job_id: int) -> bool:
        """True for exactly one caller per job, in every process sharing the store."""
        now = self.clock()
        return await self.run(lambda tx: tx.claim_delivery(job_id, now))

    # -- leases (several processes on one store: see `bot.store.leases`)

    async def register_instance(self, instance: str, *, host: str, pid: int,
                                platforms: list[str], lease_seconds: float) -> None:
        """Record this process in the store; from now on the jobs it creates are its own."""
        lease = Lease(instance, lease_seconds)
        now = self.clock()
        await self.run(lambda tx: leases.register(tx, lease, host, pid, platforms, now))
        self.lease = lease

    def _lease(self) -> Lease:
        if self.lease is None:
            raise RuntimeError("register_instance() first")
        return self.lease

    async def renew_leases(self, platforms: list[str]) -> Renewal:
        lease, now = self._lease(), self.clock()
        return await self.run(lambda tx: leases.renew(tx, lease, platforms, now))

    async def adoptable_jobs(self, platforms: list[str]) -> list[JobRecord]:
        now = self.clock()
        return await self._read(lambda tx: leases.adoptable(tx, platforms, now))

    async def adopt_job(self, job_id: int) -> bool:
        """True when this process took the job's free lease (for exactly one adopter)."""
        lease, now = self._lease(), self.clock()
        return await self.run(lambda tx: leases.adopt(tx, lease, job_id, now))

    async def holds_lease(self, job_id: int, hold: float = 0.0) -> bool:
        """True while this process holds the job's lease (always, when it never registered);
        the lease then lasts at least `hold` seconds more."""
        lease, now = self.lease, self.clock()
        if lease is None:
            return True
        return await self.run(lambda tx: leases.holds(tx, lease, job_id, now, hold))

    async def take_fal_slot(self, job_id: int, limit: int, hold: float = 0.0) -> bool:
        """Mark the job submitted if fewer than `limit` jobs of the store are at fal, its
        lease then lasting at least `hold` seconds (see `leases.take_fal_slot`)."""
        lease, now = self.lease, self.clock()
        return await self.run(
            lambda tx: leases.take_fal_slot(tx, lease, job_id, limit, now, hold))

    async def lease_holder(self, job_id: int) -> str | None:
        """The process holding the job's lease now (None when it is free)."""
        now = self.clock()
        return await self._read(lambda tx: leases.live_owner(tx, job_id, now))

    async def request_cancel(self, job_id: int, by: str) -> bool:
        """Leave a cancel for the job's owner to act on at its next heartbeat."""
        return await self.run(lambda tx: leases.request_cancel(tx, job_id, by))

    async def release_leases(self, owner: str | None = None) -> None:
        """Free every lease of this process (or of `owner`, a process found dead)."""
        lease = self.lease
        if owner is not None:
            await self.run(lambda tx: leases.release(tx, owner))
        elif lease is not None:
            await self.run(lambda tx: leases.release(tx, lease.owner))
            self.lease = None

    async def instances_on(self, host: str) -> list[tuple[str, int]]:
        return await self._read(lambda tx: leases.instances_on(tx, host))

    # -- ledger reports

    async def ledger_rows(self, job_id: int | None = None) -> list[dict[str, Any]]:
        """Raw ledger rows, oldest first, times as text (admin export, tests)."""
        return await self._read(lambda tx: tx.ledger_rows(job_id))

    async def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]:
        """Jobs, credits and USD per user or workspace for jobs started since `since`."""
        return await self._read(lambda tx: tx.usage_totals(by, since))

    async def audit(self) -> list[str]:
        """Differences between the ledger and what is kept beside it; [] when consistent."""
        return await self._read(audit)

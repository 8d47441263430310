"""Job leases: which process drives which job when several share one store.

A process registers in `instances` and holds a lease on every job it drives
(`jobs.lease_owner`, `jobs.lease_expires`). It renews them on a heartbeat; a
job whose lease ran out (its process died) or that has no owner (released by a
clean stop, or made by a tool that drives nothing) is adopted by another
process with ONE conditional UPDATE, so two adopters can never both take it.
Each statement is a step of one transaction, shared by both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.model import JobRecord, JobState

from .codec import encode_time, job_from_row
from .schema import FINAL_SQL

if TYPE_CHECKING:
    from .queries import SqlTx

AT_FAL_SQL = "(" + ", ".join(
    f"'{s.value}'" for s in (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)) + ")"
# A lease is free when nobody holds it or its holder stopped renewing it.
_FREE = "(lease_owner IS NULL OR lease_expires < :now)"


@dataclass(frozen=True)
class Lease:
    """This process as a lease holder: its instance id and how long a lease lasts."""

    owner: str
    seconds: float

    def until(self, now: datetime, hold: float = 0.0) -> str:
        """When a lease taken now ends: one lease period, or `hold` seconds when longer."""
        return encode_time(now + timedelta(seconds=max(self.seconds, hold)))


# Renewing never shortens the lease of a job being sent to fal (taken for the whole
# submit: `hold`) while fal has not answered; once its request id is written (a later
# state), the next renewal brings the lease back to one period.
_LATER = (f"CASE WHEN state = '{JobState.SUBMITTED.value}' AND lease_expires > :until "
          "THEN lease_expires ELSE :until END")


@dataclass(frozen=True)
class Renewal:
    """What a heartbeat found: the jobs this process still holds, and the cancels other
    processes asked for (job id -> who asked)."""

    held: frozenset[int]
    cancels: dict[int, str]


def register(tx: SqlTx, lease: Lease, host: str, pid: int, platforms: list[str],
             now: datetime) -> None:
    at = encode_time(now)
    tx.execute(
        """INSERT INTO instances (id, host, pid, platforms, started_at, heartbeat_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (lease.owner, host, pid, ",".join(sorted(platforms)), at, at))


def renew(tx: SqlTx, lease: Lease, platforms: list[str], now: datetime) -> Renewal:
    """Extend every lease this process still holds (one statement: a lease already taken
    over by another process is not in the answer) and beat the instance's heart.

    A lease that ran out but that nobody adopted is still this process's: adoption moves
    `lease_owner` in one conditional UPDATE, so either it came first (the job is not in
    the answer) or this renewal did (the job is not free any more). A process that was
    merely slow to renew (a loaded machine, a store queue) keeps its jobs."""
    tx.execute("UPDATE instances SET heartbeat_at = ?, platforms = ? WHERE id = ?",
               (encode_time(now), ",".join(sorted(platforms)), lease.owner))
    rows = tx.fetch(
        f"""UPDATE jobs SET lease_expires = {_LATER}
            WHERE lease_owner = :me AND state NOT IN {FINAL_SQL}
            RETURNING id, cancel_requested""",
        {"until": lease.until(now), "me": lease.owner})
    return Renewal(held=frozenset(r["id"] for r in rows),
                   cancels={r["id"]: r["cancel_requested"] for r in rows if r["cancel_requested"]})


def adoptable(tx: SqlTx, platforms: list[str], now: datetime) -> list[JobRecord]:
    """Unfinished jobs of these platforms whose lease is free, oldest first."""
    if not platforms:
        return []
    marks = ", ".join(f":p{i}" for i in range(len(platforms)))
    params: dict[str, str] = {f"p{i}": p for i, p in enumerate(platforms)}
    rows = tx.fetch(
        f"""SELECT * FROM jobs WHERE state NOT IN {FINAL_SQL} AND {_FREE}
            AND place_platform IN ({marks}) ORDER BY id""",
        {**params, "now": encode_time(now)})
    return [job_from_row(r) for r in rows]


def adopt(tx: SqlTx, lease: Lease, job_id: int, now: datetime) -> bool:
    """Take the job if its lease is free: true for exactly one of any number of callers."""
    cursor = tx.execute(
        f"""UPDATE jobs SET lease_owner = :me, lease_expires = :until
            WHERE id = :id AND state NOT IN {FINAL_SQL} AND {_FREE}""",
        {"me": lease.owner, "until": lease.until(now), "id": job_id, "now": encode_time(now)})
    return cursor.rowcount == 1


def holds(tx: SqlTx, lease: Lease, job_id: int, now: datetime, hold: float = 0.0) -> bool:
    """Whether this process still holds the job's lease (extended, for `hold` seconds when
    that is longer than a lease period, when it does): the fence before a step that must
    not be done twice. Held means owned: see `renew`."""
    cursor = tx.execute(
        f"""UPDATE jobs SET lease_expires = {_LATER}
           WHERE id = :id AND lease_owner = :me""",
        {"me": lease.owner, "until": lease.until(now, hold), "id": job_id})
    return cursor.rowcount == 1


def take_fal_slot(tx: SqlTx, lease: Lease | None, job_id: int, limit: int,
                  now: datetime, hold: float = 0.0) -> bool:
    """Mark the job submitted if fewer than `limit` jobs of the whole store are at fal
    (and this process still holds it): `backend.max_concurrent` across processes.

    The count names the unfinished jobs (`NOT IN FINAL_SQL`, redundant for its result)
    so that it runs on the partial index `jobs_unfinished`: it then reads the jobs in
    flight only, not the store's whole history (measured: 0.4 ms instead of 20 ms per
    slot with 50,000 finished jobs, inside the write transaction every process waits on).

    The lease is taken for `hold` seconds when that is longer than a lease period: the
    longest a submit to fal can take. fal has no idempotency key, so a job sent but not
    yet answered must not look free to another process while its sender is merely slow
    (a loaded machine missing a heartbeat); a sender that dies meanwhile costs that long."""
    tx.lock_fal_slots()
    params: dict[str, object] = {"id": job_id, "cap": limit, "at": encode_time(now)}
    owned = ""
    if lease is not None:
        owned = "AND lease_owner = :me"  # owned is held: see `renew`
        params.update(me=lease.owner, until=lease.until(now, hold))
    cursor = tx.execute(
        f"""UPDATE jobs SET state = '{JobState.SUBMITTED.value}', local_position = NULL,
                   updated_at = :at{", lease_expires = :until" if lease is not None else ""}
            WHERE id = :id {owned}
            AND (SELECT COUNT(*) FROM jobs
                 WHERE state NOT IN {FINAL_SQL} AND state IN {AT_FAL_SQL}) < :cap""",
        params)
    return cursor.rowcount == 1


def live_owner(tx: SqlTx, job_id: int, now: datetime) -> str | None:
    """The process that holds the job's lease now, or None when the lease is free."""
    row = tx.fetch(f"SELECT lease_owner FROM jobs WHERE id = :id AND NOT {_FREE}",
                   {"id": job_id, "now": encode_time(now)})
    return row[0]["lease_owner"] if row else None


def request_cancel(tx: SqlTx, job_id: int, by: str) -> bool:
    cursor = tx.execute(
        f"UPDATE jobs SET cancel_requested = ? WHERE id = ? AND state NOT IN {FINAL_SQL}",
        (by, job_id))
    return cursor.rowcount == 1


def release(tx: SqlTx, owner: str) -> None:
    """A clean stop (or a process found dead): every job `owner` held is free at once."""
    tx.execute("UPDATE jobs SET lease_owner = NULL, lease_expires = NULL WHERE lease_owner = ?",
               (owner,))
    tx.execute("DELETE FROM instances WHERE id = ?", (owner,))


def instances_on(tx: SqlTx, host: str) -> list[tuple[str, int]]:
    """(instance id, pid) of every process registered from `host`."""
    return [(r["id"], r["pid"]) for r in tx.fetch("SELECT id, pid FROM instances WHERE host = ?",
                                                  (host,))]

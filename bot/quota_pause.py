"""A job's reservation given back while a fal-account pause holds it, and taken again
before it is sent (see `bot.jobs.paused` for when the driver does which).

The credits a waiting job reserved are the user's while nothing can run: `give_back`
closes the job's current reservation round with a refund row (the ledger stays exact:
`audit()` finds nothing) and marks the job `unreserved`. `reserve_again` opens the
next round with a new reserve row, checked in the same transaction as a new command
of that user would be (blocked, every credit limit, the user's unfinished jobs with
this one not counted twice); the cooldown between two starts does not apply, since
this job started long ago. A job that no longer fits is refused with the usual quota
message and costs nothing. Both are fenced by the process's lease when it has one.
"""

from __future__ import annotations

from bot.model import JobRecord, JobState
from bot.ports import User
from bot.quota import Quota
from bot.store import LedgerEntry, LedgerTx, workspace_key_of

# Not at fal yet: the only states whose reservation a pause gives back.
WAITING_STATES = (JobState.ACCEPTED, JobState.WAITING)


def owner_of(job: JobRecord) -> User:
    """The job's owner as admission saw them (tier by role, admin exemption)."""
    return User(platform=job.owner_platform, id=job.owner_id, name=job.owner_name,
                roles=job.owner_roles, is_admin=job.owner_admin)


def _mark(tx: LedgerTx, owner: str | None, job_id: int, unreserved: bool) -> JobRecord:
    if owner is None:
        return tx.update_job(job_id, unreserved=unreserved)
    return tx.update_held_job(owner, job_id, {"unreserved": unreserved})


async def give_back(quota: Quota, job_id: int, *, owner: str | None) -> bool:
    """Refund a waiting job's reservation and mark it unreserved; False when there was
    nothing to give back (given back already, closed, or no longer waiting)."""
    now = quota.clock()

    def body(tx: LedgerTx) -> bool:
        job, charge = tx.get_job(job_id), tx.charge_of(job_id)
        if job is None or charge is None:
            raise LookupError(f"job {job_id} not found")
        if job.unreserved or charge.final is not None or job.state not in WAITING_STATES:
            return False
        tx.record(LedgerEntry(
            kind="refund", credits=-charge.reserved, bonus=-charge.reserved_bonus,
            usd=-charge.reserved_usd, user_key=charge.owner_key,
            workspace_key=charge.workspace_key, job_id=job_id, charged_at=charge.created_at,
            note="given back while fal's account is paused", reservation=charge.reservation,
        ), now)
        _mark(tx, owner, job_id, True)
        return True

    return await quota.store.run(body)


async def reserve_again(quota: Quota, job: JobRecord, *, owner: str | None,
                        workspace_word: str = "workspace") -> bool:
    """Reserve an unreserved job's estimate again, as admission would; False when it held
    its reservation already. Raises QuotaExceeded or PermissionDenied (nothing written)."""
    now = quota.clock()
    user = owner_of(job)
    workspace_key = workspace_key_of(job.place)

    def body(tx: LedgerTx) -> bool:
        stored, charge = tx.get_job(job.id), tx.charge_of(job.id)
        if stored is None or charge is None:
            raise LookupError(f"job {job.id} not found")
        if not stored.unreserved:
            return False
        cost = stored.estimate_credits
        bonus = quota.reservation_checks(tx, user, tx.get_user(user.key), job.place, cost, now,
                                         workspace_word=workspace_word, already_running=True)
        tx.record(LedgerEntry(
            kind="reserve", credits=cost, bonus=bonus, usd=stored.estimate_usd,
            user_key=user.key, workspace_key=workspace_key, job_id=job.id, charged_at=now,
            note="reserved again after the pause", reservation=charge.reservation + 1,
        ), now)
        _mark(tx, owner, job.id, False)
        return True

    return await quota.store.run(body)

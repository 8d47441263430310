"""A job's side of a pause (`bot.pause`): it waits while one applies, and during a fal
account pause its credits go back to the user until generation resumes.

Every job of this process that has not reached fal does this for itself, so each
process acts only on the jobs it holds a lease on: a job in the local admission line
watches for a pause while it waits there; a job holding a slot (or refused by fal
for the account) waits in `while_paused`. Either way, under a fal-account pause, it
gives its reservation back (`bot.quota_pause.give_back`, the card says so) and stays
waiting. When no pause applies any more, `reserve_again` takes the credits again as a
new command would, before the job can be sent; a job the user can no longer pay for
ends with the plain quota message and costs nothing. An admin's pause keeps the
reservations (it is meant to be short, and the user chose to wait).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot import pause, quota_pause
from bot.errors import PermissionDenied, QuotaExceeded
from bot.store.protocol import LeaseRefused
from bot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from bot.jobs.driver import JobDriver

log = logging.getLogger(__name__)


class NoLongerFits(Exception):
    """The job could not reserve its credits again after a pause: it ends, free."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _show(driver: JobDriver, paused: bool) -> None:
    if driver.paused != paused:
        driver.paused = paused
        driver.edit_soon()


async def _applies(driver: JobDriver) -> bool:
    """Whether a pause applies to the job's place now; gives the job's credits back
    when that is a fal-account pause."""
    found = await driver.rt.pauses.active(driver.job.place)
    if any(p.kind == pause.FAL_ACCOUNT for p in found):
        await give_back(driver)
    _show(driver, bool(found))
    return bool(found)


def _lease_lost(driver: JobDriver) -> Exception:
    # Imported here: the driver imports this module.
    from bot.jobs.driver import LeaseLost

    driver.lost = True
    return LeaseLost()


async def give_back(driver: JobDriver) -> None:
    """Refund the reservation of a job that has not reached fal (once). A job that took
    its slot at fal is `submitted` already, so it keeps its credits."""
    job = driver.job
    if job.unreserved or job.state not in quota_pause.WAITING_STATES:
        return
    try:
        given = await quota_pause.give_back(driver.rt.quota, job.id, owner=_owner(driver))
    except LeaseRefused:
        raise _lease_lost(driver) from None
    if given:
        job.unreserved = True
        log.info("job %d: fal's account is paused; its %d credits go back to the user while "
                 "it waits", job.id, job.estimate_credits)
        driver.edit_soon()


async def reserve_again(driver: JobDriver) -> None:
    """Before a job that gave its credits back is sent: reserve them again."""
    job = driver.job
    if not job.unreserved:
        return
    try:
        await quota_pause.reserve_again(driver.rt.quota, job, owner=_owner(driver),
                                        workspace_word=driver.port.traits.workspace_word)
    except (QuotaExceeded, PermissionDenied) as exc:
        log.info("job %d: cannot reserve its credits again after the pause: %s", job.id, exc)
        raise NoLongerFits(exc.message) from None
    except LeaseRefused:
        raise _lease_lost(driver) from None
    job.unreserved = False
    driver.edit_soon()


def _owner(driver: JobDriver) -> str | None:
    lease = driver.rt.store.lease
    return lease.owner if lease is not None else None


async def while_paused(driver: JobDriver) -> None:
    """Until no pause applies to the job's place (a waiting job stays waiting)."""
    while await _applies(driver):
        if not await driver.rt.store.holds_lease(driver.job.id):
            raise _lease_lost(driver)
        await asyncio.sleep(driver.rt.pause_poll_seconds)


async def wait_in_line(driver: JobDriver) -> None:
    """Until the job holds a slot in the local admission line, looking every
    `pause_poll_seconds` whether a pause began (a fal-account pause gives the job's
    credits back while it waits)."""
    line = asyncio.ensure_future(driver.rt.admission.wait_for_slot(driver.job.id))
    try:
        while True:
            done, _ = await asyncio.wait({line}, timeout=driver.rt.pause_poll_seconds)
            if done:
                return line.result()
            await _applies(driver)
    finally:
        await cancel_and_wait(line)

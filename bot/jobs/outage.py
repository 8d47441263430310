"""A job's view of a fal outage: which failures mean "fal cannot be reached", how long
to wait before trying again (capped, jittered backoff), and when to give up
(`[jobs] fal_unreachable_minutes` after the outage began).

Only failures that say nothing about the job itself count: no connection, or fal's
gateway answering 502/503/504 (or 5xx) after the client's own retries. A request
that ran and failed, a refused input or an expired result end the job as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import FalError, FalTransportError
from bot.fal import REFUSED_STATUSES

if TYPE_CHECKING:
    from bot.jobs.driver import JobDriver

log = logging.getLogger(__name__)

UNREACHABLE_TEXT = "fal is unreachable, still trying"
# The first retry comes soon (a blip), later ones at most this far apart, so a job
# notices within half a minute that fal is back.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


class FalUnreachable(FalError):
    """fal could not be reached for `[jobs] fal_unreachable_minutes`: the job gives up."""


def is_outage(exc: BaseException) -> bool:
    """True for a failure that means fal (not this job) is in trouble right now."""
    if isinstance(exc, FalUnreachable):
        return False
    if isinstance(exc, FalTransportError):
        return True
    # A plain 5xx from fal's gateway (the subclasses are answers about the request).
    return type(exc) is FalError and exc.upstream_fault


def never_sent(exc: BaseException) -> bool:
    """A submit that failed so that fal cannot have taken it: safe to send again. That is
    no connection at all, or fal refusing it outright (429, 503); a 502 or 504 may come
    from a gateway that had passed the request on already."""
    if not isinstance(exc, FalTransportError) or not exc.retryable:
        return False
    return exc.status is None or exc.status in REFUSED_STATUSES


class Outage:
    """One job's outage clock. `wait(exc)` starts it (the card then shows
    `UNREACHABLE_TEXT`) and sleeps before the next try, or raises `FalUnreachable`
    once the limit has passed; `over()` stops it when fal answered again."""

    def __init__(self, job_id: int, limit_minutes: float, on_change: Callable[[], None]) -> None:
        self.job_id = job_id
        self.limit_seconds = limit_minutes * 60.0
        self.on_change = on_change
        self.since: float | None = None  # monotonic
        self.attempt = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def remaining(self) -> float:
        if self.since is None:
            return self.limit_seconds
        return self.limit_seconds - (time.monotonic() - self.since)

    async def wait(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.attempt = 0
            log.warning("job %d: fal is unreachable (%s); trying again for up to %g minutes",
                        self.job_id, exc, self.limit_seconds / 60)
            self.on_change()
        left = self.remaining()
        if left <= 0:
            raise FalUnreachable(f"fal could not be reached for {self.limit_seconds / 60:g} "
                                 "minutes", status=getattr(exc, "status", None))
        self.attempt += 1
        cap = min(BACKOFF_MAX_SECONDS, max(0.05, self.limit_seconds / 10))
        ceiling = min(cap, BACKOFF_FIRST_SECONDS * 2.0 ** (self.attempt - 1))
        # Jitter: the jobs an outage hit together do not all come back at once.
        await asyncio.sleep(min(left, ceiling * random.uniform(0.5, 1.0)))

    def over(self) -> None:
        if self.since is None:
            return
        took = time.monotonic() - self.since
        self.since = None
        log.info("job %d: fal answers again after %.0f s; carrying on", self.job_id, took)
        self.on_change()


async def cancel_when_back(driver: JobDriver) -> None:
    """Cancel at fal a job cancelled during an outage, trying until fal answers or the
    outage limit has passed; the operator learns the request id if it never does."""
    job = driver.job
    driver.outage.on_change = lambda: None  # the card is final already
    handle = driver.handle or driver.rt.fal.handle_for(job.endpoint_id, job.fal_request_id or "")
    try:
        outcome = await driver.through_outages(lambda: driver.rt.fal.cancel(handle))
        log.info("job %d: cancel at fal after the outage: %s", job.id, outcome)
    except (Exception, asyncio.CancelledError) as exc:
        # Given up (the outage limit), stopped, or the store failed: the operator learns
        # which request fal may still run.
        log.warning("job %d: could not cancel fal request %s after the outage (%s); fal "
                    "may still run it and bill it", job.id, job.fal_request_id,
                    type(exc).__name__)
        if isinstance(exc, asyncio.CancelledError):
            raise

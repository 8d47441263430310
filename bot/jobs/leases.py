"""The runner's side of job leases: several processes on one store.

A process registers in the store when its runner starts and from then on drives
only the jobs whose lease it holds: the ones it created, and the ones it adopted
because their lease ran out (their process died) or was released (a clean stop).
A heartbeat every third of `[jobs] lease_seconds` renews the leases, picks up
cancels asked in other processes, drops every job whose lease this process lost
(it must not go on after another process may have adopted it), and adopts what
is free for the platforms it has a port for.

A process of the same host (and PID namespace) that is gone is seen at once, so a
restart after a crash on one machine adopts its jobs without waiting for the lease;
a process elsewhere costs at most one lease period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from bot.jobs.driver import JobDriver
from bot.jobs.runtime import Runtime
from bot.model import JobRecord, JobState

log = logging.getLogger(__name__)

# Adopted and resumed jobs already at fal take their slots first; those waiting keep their order.
RESUME_ORDER = {JobState.SUBMITTED: 0, JobState.IN_QUEUE: 0, JobState.RUNNING: 0,
                JobState.DELIVERING: 1, JobState.ACCEPTED: 2, JobState.WAITING: 2}


class LeaseKeeper:
    """Registers this process, renews its leases and adopts free jobs.

    `adopt(job)` hands an adopted job to the runner; `platforms()` names the ports
    this process has, whose jobs alone it may adopt.
    """

    def __init__(self, rt: Runtime, platforms: Callable[[], list[str]],
                 adopt: Callable[[JobRecord], None]) -> None:
        self.rt = rt
        self._platforms = platforms
        self._adopt = adopt
        self.seconds = rt.settings.jobs.lease_seconds
        self.host = host_key()
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._adopting = asyncio.Lock()
        self._last_renewed = time.monotonic()

    async def start(self) -> None:
        await self.rt.store.register_instance(
            self.instance, host=self.host, pid=os.getpid(),
            platforms=self._platforms(), lease_seconds=self.seconds)
        self._last_renewed = time.monotonic()
        log.info("registered as %s (leases of %gs)", self.instance, self.seconds)
        await self.adopt_free()
        self._task = asyncio.create_task(self._beat(), name="lease-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat (the runner then stops its drivers and calls `release`)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def release(self) -> None:
        """A clean stop: the next start (of any process) adopts these jobs at once."""
        try:
            await self.rt.store.release_leases()
        except Exception:
            log.warning("could not release the job leases; they run out in %gs",
                        self.seconds, exc_info=True)

    async def adopt_free(self) -> None:
        """Adopt every unfinished job whose lease is free, for the ports this process has;
        one conditional update per job decides between processes."""
        async with self._adopting:
            if self.rt.stopping:
                return
            await self._forget_the_dead()
            jobs = await self.rt.store.adoptable_jobs(self._platforms())
            for job in sorted(jobs, key=_resume_order):
                if job.id in self.rt.drivers or self.rt.stopping:
                    continue
                if await self.rt.store.adopt_job(job.id):
                    log.info("job %d: adopted (%s)", job.id, job.state.value)
                    self._adopt(job)

    async def _forget_the_dead(self) -> None:
        """Free the leases of processes of this host that are gone (a crash, a kill)."""
        for instance, pid in await self.rt.store.instances_on(self.host):
            if pid != os.getpid() and not pid_alive(pid):
                log.info("process %s is gone: its jobs are free to adopt", instance)
                await self.rt.store.release_leases(instance)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
                await self.adopt_free()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job lease heartbeat failed", exc_info=True)
                if time.monotonic() - self._last_renewed >= self.seconds:
                    # Another process may adopt them any moment now: stop driving them.
                    for driver in list(self.rt.drivers.values()):
                        self.drop(driver)

    async def renew(self) -> None:
        """Renew every held lease; drop the jobs whose lease was lost; act on cancels."""
        started = time.monotonic()
        known = dict(self.rt.drivers)  # only drivers older than the renewal can have lost
        renewal = await self.rt.store.renew_leases(self._platforms())
        self._last_renewed = started
        for job_id, driver in known.items():
            if job_id not in renewal.held and not driver.job.state.final:
                self.drop(driver)
        for job_id, by in renewal.cancels.items():
            asked = self.rt.drivers.get(job_id)
            if asked is not None and not asked.cancel_requested:
                log.info("job %d: cancel asked by %s in another process", job_id, by)
                asked.request_cancel(by)

    def drop(self, driver: JobDriver) -> None:
        """Stop driving a job whose lease this process no longer holds; nothing of it is
        written or ended here (its new owner drives it)."""
        if self.rt.drivers.get(driver.job.id) is not driver or driver.job.state.final:
            return
        log.warning("job %d: its lease was lost (another process may drive it now); "
                    "this process stops driving it", driver.job.id)
        driver.lost = True
        self.rt.drivers.pop(driver.job.id, None)
        if driver.task is not None:
            driver.task.cancel()
        self.rt.signal(driver.job.id)


def host_key() -> str:
    """This machine and PID namespace: where a process id means the same process."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}#{namespace}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _resume_order(job: JobRecord) -> tuple[int, int]:
    return RESUME_ORDER.get(job.state, 3), job.id

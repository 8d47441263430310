"""Keeps a simulator's requests in its state directory (`state.SimState`), so that a
restarted simulator, or another one on the same directory, finds every request.

A request this simulator runs is written at each change. One it does not know yet
is read from disk when a client asks for it: a finished one is served as it is; an
unfinished one whose owner still runs is mirrored (its record is read again until it
ends); one whose owner is gone is adopted and run here. On start, every unfinished
request whose owner is gone is adopted at once, as fal's queue would go on without
any client asking.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from bot.sim.files import FileStore
from bot.sim.jobs import COMPLETED, JobQueue, SimJob
from bot.sim.options import SimOptions
from bot.sim.state import HEARTBEAT_SECONDS, SimState
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MIRROR_POLL_SECONDS = 0.2
PRUNE_EVERY_BEATS = 150  # about every five minutes


class Keeper:
    """The state directory's side of a simulator: save, find, adopt, mirror, beat."""

    def __init__(self, state: SimState, files: FileStore, options: SimOptions) -> None:
        self.state = state
        self.url = ""  # the simulator's URL, set once it listens
        self._queue: JobQueue | None = None  # the simulator's, from `start`
        self._files = files
        self._options = options
        self._beating: asyncio.Task[None] | None = None

    @property
    def owner(self) -> str:
        return self.state.owner

    @property
    def queue(self) -> JobQueue:
        assert self._queue is not None, "Keeper.start() first"
        return self._queue

    def start(self, url: str, queue: JobQueue) -> None:
        self.url, self._queue = url, queue
        self.state.open()
        self.state.remember_origin(url)
        self._prune()
        self._beating = asyncio.create_task(self._beat(), name="sim-heartbeat")
        adopted = 0
        for record in self.state.unfinished():
            if record.get("id") in self.queue.jobs or self.state.owner_alive(record.get("owner")):
                continue
            job = _job(record)
            if job is not None:
                self._adopt(job)
                adopted += 1
        if adopted:
            log.info("fal simulator: resumed %d unfinished request(s) from %s", adopted,
                     self.state.root)

    async def stop(self) -> None:
        beating, self._beating = self._beating, None
        await cancel_and_wait(beating)
        self.state.close()

    # ------------------------------------------------------------ one request

    def save(self, job: SimJob) -> None:
        """Write the record of a job this simulator runs (the queue calls it at each change)."""
        if job.owner != self.owner:
            return
        try:
            self.state.save(job.record())
            if job.state == COMPLETED:
                self.state.forget_cancel(job.id)
        except OSError as exc:
            # The queue goes on in memory; only a restart would lose this request.
            log.warning("fal simulator: cannot save request %s: %s", job.id, exc.strerror)

    def cancel_asked(self, job: SimJob) -> bool:
        return self.state.cancel_asked(job.id)

    def find(self, request_id: str) -> SimJob | None:
        """A request this simulator did not know: from disk, served, mirrored or adopted."""
        record = self.state.load(request_id)
        job = _job(record) if record is not None else None
        if job is None:
            return None
        if job.state == COMPLETED:
            self.queue.keep(job)
        elif self.state.owner_alive(job.owner):
            self._mirror(job)
        else:
            self._adopt(job)
        return job

    def ask_cancel(self, job: SimJob) -> None:
        """Cancel a mirrored request: its owner sees the mark at its next step."""
        self.state.ask_cancel(job.id)

    def mirrored(self, job: SimJob) -> bool:
        return job.owner != self.owner and job.state != COMPLETED

    def made_here(self, url: str) -> bool:
        """Whether a simulator on this directory made `url` (its address was ours once)."""
        parts = urlsplit(url)
        return bool(parts.netloc) and self.state.was_origin(f"{parts.scheme}://{parts.netloc}")

    def result(self, job: SimJob) -> Any:
        """The job's result with its file URLs on this simulator's address."""
        if not job.origin or job.origin == self.url:
            return job.result
        return _rebase(job.result, f"{job.origin}/files/", f"{self.url}/files/")

    # ------------------------------------------------------------ inside

    def _adopt(self, job: SimJob) -> None:
        job.owner, job.origin = self.owner, self.url
        job.cancel_requested = False
        self.queue.add(job)

    def _mirror(self, job: SimJob) -> None:
        self.queue.keep(job)
        job.task = asyncio.create_task(self._follow(job), name=f"sim-mirror-{job.id}")

    async def _follow(self, job: SimJob) -> None:
        """Read another simulator's record of `job` until it ends, or adopt it when that
        simulator is gone."""
        seen: dict[str, Any] = job.record()
        while job.state != COMPLETED and not self.queue.closing:
            await asyncio.sleep(MIRROR_POLL_SECONDS)
            record = self.state.load(job.id)
            if record is not None and record != seen:
                seen = record
                job.update_from(record)
                job.notify()
            if job.state != COMPLETED and not self.state.owner_alive(job.owner):
                self._adopt(job)
                return

    async def _beat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            beats += 1
            try:
                await asyncio.to_thread(self.state.beat)
                if beats % PRUNE_EVERY_BEATS == 0:
                    await asyncio.to_thread(self._prune)
            except OSError as exc:
                log.warning("fal simulator: cannot write to %s: %s", self.state.root, exc.strerror)

    def _prune(self) -> None:
        self.state.prune(2 * self._options.result_ttl_seconds)
        self._files.prune(self._options.file_ttl_seconds)
        self.state.prune_origins(self._options.file_ttl_seconds)


def _job(record: dict[str, Any]) -> SimJob | None:
    try:
        return SimJob.from_record(record)
    except (LookupError, TypeError, ValueError) as exc:
        # A record from another version, or damaged: that request is lost, the rest is not.
        log.warning("fal simulator: ignoring unreadable request record %s: %s",
                    record.get("id"), type(exc).__name__)
        return None


def _rebase(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return new + value[len(old):] if value.startswith(old) else value
    if isinstance(value, dict):
        return {key: _rebase(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebase(item, old, new) for item in value]
    return value

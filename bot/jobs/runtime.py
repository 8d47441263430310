"""What the runner and every job's driver share: the services, the admission queue,
the live drivers, the tasks `stop()` waits for or cancels, and the observation hooks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import Settings
from bot.fal import FalClient
from bot.jobs.admission import Admission
from bot.media import Fetcher
from bot.model import JobRecord
from bot.pause import Pauses
from bot.quota import Quota
from bot.store import Store

if TYPE_CHECKING:
    from bot.jobs.driver import JobDriver

T = TypeVar("T")


@dataclass
class RunnerHooks:
    """Observation and test points; none changes what the runner does.

    `on_state(job)` runs after every state write; `on_mark(job_id, mark, perf_counter)`
    receives timing marks (submit_called, fal_submit, completed, download_start,
    download_end, handed_to_port) for benchmarks; `before_delivery(job)` is awaited
    once a job is `delivering`, before anything is downloaded, settled or sent.
    """

    on_state: Callable[[JobRecord], None] | None = None
    on_mark: Callable[[int, str, float], None] | None = None
    before_delivery: Callable[[JobRecord], Awaitable[None]] | None = None


@dataclass
class Runtime:
    """The runner's shared parts, handed to every job's driver.

    `critical` holds the shielded steps `stop()` lets finish (a submit recording its
    request id, a delivery its message); `background` the card edits it cancels.
    """

    settings: Settings
    store: Store
    quota: Quota
    fal: FalClient
    fetcher: Fetcher  # results are downloaded under the same guard as inputs
    admission: Admission
    pauses: Pauses  # generation paused (fal account, admin): see bot/pause.py
    hooks: RunnerHooks = field(default_factory=RunnerHooks)
    drivers: dict[int, JobDriver] = field(default_factory=dict)
    finished: dict[int, asyncio.Event] = field(default_factory=dict)
    critical: set[asyncio.Task[Any]] = field(default_factory=set)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # Seconds a run typically takes per endpoint (moving average), for ETAs before fal
    # reports any progress.
    typical_run: dict[str, float] = field(default_factory=dict)
    stopping: bool = False
    # How often a job waiting out a pause looks at the store again.
    pause_poll_seconds: float = 2.0
    work_root: Path | None = None

    async def shielded(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a step that must not be torn in half by `stop()` (which waits for it)."""
        task = asyncio.create_task(coro)
        self.critical.add(task)
        task.add_done_callback(self.critical.discard)
        return await asyncio.shield(task)

    def spawn_background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def signal(self, job_id: int) -> None:
        """Wake everyone waiting for the job to end."""
        event = self.finished.pop(job_id, None)
        if event is not None:
            event.set()

    def state_changed(self, job: JobRecord) -> None:
        if self.hooks.on_state is not None:
            self.hooks.on_state(replace(job))

    def mark(self, job_id: int, mark: str, at: float | None = None) -> None:
        if self.hooks.on_mark is not None:
            self.hooks.on_mark(job_id, mark, time.perf_counter() if at is None else at)

"""The simulator's queue: jobs and their lifecycle, as fal runs them.

Jobs wait IN_QUEUE behind a concurrency limit (low priority behind normal), log
"Step k/N (p%)" while they run, and end COMPLETED with a result or an error. A
queued job is cancelled at once; a running one stops at its next step.

Every change is handed to `on_change` (the simulator writes the job's record to its
state directory there, when it has one); `SimJob.record` and `SimJob.from_record`
are that record. Times in it are wall-clock, so they mean the same after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.catalog import Endpoint, by_endpoint_id
from bot.sim.options import SimOptions

log = logging.getLogger(__name__)

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
STATE_ORDER = (IN_QUEUE, IN_PROGRESS, COMPLETED)
CancelAnswer = Literal["OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED"]


@dataclass
class SimJob:
    """One request on the simulated queue: its input, where it is, and how it ended."""

    id: str
    endpoint: Endpoint
    payload: dict[str, Any]
    seed: int
    priority: str
    submitted: float  # time.time(), like every time here
    start_deadline: float | None = None
    state: str = IN_QUEUE
    position: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    result: dict[str, Any] | None = None
    result_status: int = 200
    inference_time: float | None = None
    done_at: float | None = None
    owner: str | None = None  # the simulator that runs it (state directories only)
    origin: str = ""  # the simulator URL its result's file URLs were made under
    cancel_requested: bool = False
    cancel_signal: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    slot: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None

    @property
    def app_id(self) -> str:
        return self.endpoint.app_id

    def notify(self) -> None:
        """Wake everyone waiting on `changed` (status streams, `wait_state`)."""
        # Waiters hold the old event; swapping before setting wakes each of them once.
        old, self.changed = self.changed, asyncio.Event()
        old.set()

    def record(self) -> dict[str, Any]:
        """The job as JSON, for the state directory."""
        return {
            "id": self.id, "endpoint_id": self.endpoint.endpoint_id, "payload": self.payload,
            "seed": self.seed, "priority": self.priority, "submitted": self.submitted,
            "start_deadline": self.start_deadline, "state": self.state,
            "position": self.position, "logs": self.logs, "error": self.error,
            "error_type": self.error_type, "result": self.result,
            "result_status": self.result_status, "inference_time": self.inference_time,
            "done_at": self.done_at, "owner": self.owner, "origin": self.origin,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> SimJob:
        """A job from its record (raises KeyError or ValueError for a broken one)."""
        job = cls(id=str(data["id"]), endpoint=by_endpoint_id(str(data["endpoint_id"])),
                  payload=dict(data["payload"]), seed=int(data["seed"]),
                  priority=str(data.get("priority") or "normal"),
                  submitted=float(data.get("submitted") or 0.0))
        job.update_from(data)
        return job

    def update_from(self, data: dict[str, Any]) -> None:
        """Take over the changing part of a record (another simulator's progress)."""
        self.start_deadline = data.get("start_deadline")
        self.state = str(data.get("state") or IN_QUEUE)
        self.position = data.get("position")
        self.logs = list(data.get("logs") or [])
        self.error, self.error_type = data.get("error"), data.get("error_type")
        self.result = data.get("result")
        self.result_status = int(data.get("result_status") or 200)
        self.inference_time = data.get("inference_time")
        self.done_at = data.get("done_at")
        self.owner = data.get("owner")
        self.origin = str(data.get("origin") or "")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class JobQueue:
    """Runs simulated jobs: admission by priority and concurrency, progress, rendering in
    worker threads (`render` turns a job into its output JSON), and cancellation."""

    def __init__(self, options: SimOptions, rng: random.Random,
                 render: Callable[[SimJob], dict[str, Any]],
                 on_change: Callable[[SimJob], None] | None = None,
                 cancel_asked: Callable[[SimJob], bool] | None = None) -> None:
        self.options = options
        self.jobs: dict[str, SimJob] = {}
        self.completed_at: dict[str, float] = {}  # perf_counter() when each job ended
        self.closing = False
        self._rng = rng
        self._render = render
        self._on_change = on_change or (lambda job: None)
        # A cancel asked of another simulator sharing the state directory.
        self._cancel_asked = cancel_asked or (lambda job: False)
        self._queued: list[SimJob] = []
        self._running: set[str] = set()
        self._renders: set[asyncio.Future[Any]] = set()
        self._render_pool: ThreadPoolExecutor | None = None

    def add(self, job: SimJob) -> None:
        """Queue `job` and start its lifecycle (a job adopted from a state directory too:
        one that was running starts again, as on a runner that was lost)."""
        self._prune()
        self.jobs[job.id] = job
        job.state, job.position = IN_QUEUE, None
        self._enqueue(job)
        self._on_change(job)
        job.task = asyncio.create_task(self._lifecycle(job), name=f"sim-job-{job.id}")

    def keep(self, job: SimJob) -> None:
        """Know a job without running it (finished, or run by another simulator)."""
        self.jobs[job.id] = job

    def cancel(self, job: SimJob) -> CancelAnswer:
        if job.state == COMPLETED:
            return "ALREADY_COMPLETED"
        if job in self._queued:
            # Still queued: fal removes it at once.
            self._queued.remove(job)
            self._finish_cancelled(job)
            if job.task is not None:
                job.task.cancel()
            self._pump()
            return "OK"
        # Running (or just handed a slot): the runner is told and stops at its next step.
        job.cancel_requested = True
        job.cancel_signal.set()
        return "CANCELLATION_REQUESTED"

    async def close(self) -> None:
        # Open status streams would hold the server's shutdown: wake them to end.
        self.closing = True
        for job in self.jobs.values():
            job.notify()
        tasks = [j.task for j in self.jobs.values() if j.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Render threads cannot be interrupted; wait so their files are not pulled from under them.
        await asyncio.gather(*self._renders, return_exceptions=True)
        if self._render_pool is not None:
            self._render_pool.shutdown(wait=False)
            self._render_pool = None

    def _prune(self) -> None:
        # Long standalone runs should not keep every job forever.
        cutoff = time.time() - 2 * self.options.result_ttl_seconds
        for job_id in [j.id for j in self.jobs.values() if j.done_at and j.done_at < cutoff]:
            del self.jobs[job_id]

    # ------------------------------------------------------------ scheduling

    def _enqueue(self, job: SimJob) -> None:
        if job.priority == "low":
            self._queued.append(job)
        else:
            index = next((i for i, q in enumerate(self._queued) if q.priority == "low"),
                         len(self._queued))
            self._queued.insert(index, job)
        self._pump()

    def _pump(self) -> None:
        """Start ready jobs while there are free slots, then refresh queue positions."""
        limit = max(1, self.options.concurrency)
        for job in list(self._queued):
            if len(self._running) >= limit:
                break
            if job.slot is not None and not job.slot.done():
                self._queued.remove(job)
                self._running.add(job.id)
                job.slot.set_result(None)
        for index, job in enumerate(self._queued):
            if job.position != index:
                job.position = index
                job.notify()
                self._on_change(job)

    async def _lifecycle(self, job: SimJob) -> None:
        try:
            if self.options.queue_seconds > 0:
                await asyncio.sleep(self.options.queue_seconds)
            if await self._slot(job):
                await self._run(job)
        except asyncio.CancelledError:
            pass  # cancelled while queued, or the simulator is stopping: nothing to report
        finally:
            self._running.discard(job.id)
            if job in self._queued:
                self._queued.remove(job)
            self._pump()

    async def _slot(self, job: SimJob) -> bool:
        """Wait for a free slot; False when the request's start deadline passed first."""
        job.slot = asyncio.get_running_loop().create_future()
        self._pump()
        try:
            if job.start_deadline is None:
                await job.slot
            else:
                await asyncio.wait_for(job.slot, max(0.0, job.start_deadline - time.time()))
        except TimeoutError:
            if job in self._queued:
                self._queued.remove(job)
            self._finish(job, error="The request timed out before it started.",
                         error_type="request_timeout", status=504)
            return False
        return True

    # ------------------------------------------------------------ running

    async def _run(self, job: SimJob) -> None:
        if job.cancel_requested or self._cancel_asked(job):
            self._finish_cancelled(job)
            return
        job.state = IN_PROGRESS
        job.position = None
        started = time.monotonic()
        self._on_change(job)
        self._log(job, f"Generating with {job.endpoint.title}")
        render = self._start_render(job)
        will_fail = self.options.error_rate > 0 and self._rng.random() < self.options.error_rate
        if not await self._steps(job):
            self._finish_cancelled(job)
            return
        if will_fail:
            # 500, not 503: the request ran and failed; retrying the result cannot help.
            self._finish(job, error="The runner disconnected while generating.",
                         error_type="runner_disconnected", status=500)
            return
        try:
            result = await asyncio.shield(render)
        except Exception:
            # A render bug is the simulator's own failure: the job ends failed, the server
            # keeps serving the others.
            log.exception("simulator render failed for %s", job.id)
            self._finish(job, error="Rendering failed.", error_type="internal_error", status=500)
            return
        job.inference_time = round(time.monotonic() - started, 3)
        self._finish(job, result=result)

    def _start_render(self, job: SimJob) -> asyncio.Future[dict[str, Any]]:
        """The MP4 renders in a thread while the steps tick, as a real runner's would."""
        if self._render_pool is None:
            self._render_pool = ThreadPoolExecutor(
                max_workers=max(1, self.options.render_workers), thread_name_prefix="sim-render"
            )
        loop = asyncio.get_running_loop()
        render: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(
            loop.run_in_executor(self._render_pool, self._render, job))
        self._renders.add(render)
        render.add_done_callback(self._renders.discard)
        return render

    async def _steps(self, job: SimJob) -> bool:
        """Log each progress step over `run_seconds`; False when cancelled on the way."""
        steps = max(1, self.options.steps)
        pause = self.options.run_seconds / steps
        for step in range(1, steps + 1):
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.cancel_signal.wait(), pause)
            if not job.cancel_requested and self._cancel_asked(job):
                job.cancel_requested = True
            if job.cancel_requested:
                return False
            self._log(job, f"Step {step}/{steps} ({round(100 * step / steps)}%)")
        return True

    def _log(self, job: SimJob, message: str) -> None:
        job.logs.append({"message": message, "level": "INFO", "source": "USER",
                         "timestamp": _now_iso()})
        job.notify()
        self._on_change(job)

    def _finish(self, job: SimJob, *, result: dict[str, Any] | None = None,
                error: str | None = None, error_type: str | None = None,
                status: int = 200) -> None:
        if job.state == COMPLETED:
            return
        job.state = COMPLETED
        job.position = None
        job.result = result
        job.error, job.error_type = error, error_type
        job.result_status = status if error else 200
        job.done_at = time.time()
        self.completed_at[job.id] = time.perf_counter()
        self._on_change(job)
        job.notify()

    def _finish_cancelled(self, job: SimJob) -> None:
        self._finish(job, error="The request was cancelled.", error_type="request_cancelled",
                     status=400)

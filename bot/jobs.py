"""JobRunner: one job from admission to the delivered video, and back after a restart.

Every state change is written to the store *before* the action it leads to, so
a restart finds each job at a step it can safely repeat or resume:

    accepted -> waiting -> submitted -> in_queue -> running -> delivering -> done
                                                         \\-> failed | cancelled

Each job has one driver task, the only writer of its state. A user's cancel
only raises a flag and interrupts the driver where it waits (for a slot, for
fal); the driver itself then cancels at fal, refunds and finishes the card.
Steps that must not be torn in half by `stop()` — submitting to fal and
recording the request id, settling, claiming and sending the delivery,
finishing a job — run shielded in their own tasks, which `stop()` waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from bot import media
from bot.catalog import Endpoint, UnknownModel, VideoOutput, by_endpoint_id, settle_usd
from bot.config import Settings
from bot.errors import (
    FalError,
    FalRequestFailed,
    FalValidationError,
    MediaError,
    NotFound,
    PermissionDenied,
    ResultExpired,
    UserError,
    report_unexpected,
)
from bot.fal import Completed, Failed, FalClient, FalEvent, Queued, QueueHandle, Running
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia, MediaInfo
from bot.ports import (
    Action,
    ChatPort,
    Invocation,
    MessageRef,
    PlatformTraits,
    StatusCard,
    Tone,
    User,
    format_duration,
    progress_bar,
)
from bot.quota import Quota, QuotaStatus
from bot.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# Results are fitted down to the platform's limit afterwards; this only stops a
# runaway download from filling the disk.
MAX_RESULT_BYTES = 2 * 1024 * 1024 * 1024
# Progress and queue positions change often; the card shows every change, the
# database only needs a recent value for the card after a restart.
PERSIST_INTERVAL_SECONDS = 10.0
# Best-effort calls on the way out (cancel at fal after a failure) must not hold a job open.
CLEANUP_TIMEOUT_SECONDS = 15.0
# An input slot that still points at the user's original file: the upload never finished.
LOCAL_MARK = "local:"

EXPIRED_TEXT = (
    "The result expired at fal before it could be delivered; your credits were refunded."
)
INPUTS_LOST_TEXT = (
    "The bot restarted before your attachments were sent to fal, and they are gone now. "
    "Your credits were refunded; please run the command again."
)
TIMEOUT_TEXT = "The generation took longer than the bot waits ({hours:g} h) and was stopped. Your credits were refunded."
REFUNDED = "Your credits were refunded."

# fal's error_type values in plain words (PLATFORM-NOTES, fal's docs).
ERROR_WORDS: dict[str, str] = {
    "request_timeout": "The generation took longer than fal allows and was stopped.",
    "startup_timeout": "fal could not start the model in time.",
    "runner_scheduling_failure": "fal could not find a machine to run the model right now.",
    "runner_disconnected": "fal lost the machine that was running the generation.",
    "runner_server_error": "The model crashed on fal's side.",
    "internal_server_error": "fal had an internal error.",
    "client_disconnected": "fal lost the connection to the request.",
    "content_policy_violation": "fal's safety checker refused the prompt or an input image.",
    "safety_checker": "fal's safety checker refused the prompt or an input image.",
    "nsfw_content_detected": "fal's safety checker flagged the result.",
    "file_download_error": "fal could not download one of the inputs.",
    "image_load_error": "fal could not read one of the input images.",
    "video_load_error": "fal could not read the input video.",
    "validation_error": "fal did not accept the input.",
    "out_of_memory": "The model ran out of memory on fal; try a shorter or smaller video.",
}

_STATE_RANK = {s: i for i, s in enumerate(JobState)}
_AT_FAL = (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)


def plain_failure(error_type: str | None) -> str:
    """What a user reads when fal reports a failed request."""
    if error_type and error_type in ERROR_WORDS:
        words = ERROR_WORDS[error_type]
    elif error_type:
        words = f"fal could not finish the generation ({error_type.replace('_', ' ')})."
    else:
        words = "fal could not finish the generation."
    return f"{words} {REFUNDED}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _uploaded(value: Any) -> bool:
    """True when no media URL in a fal input still points at a local original."""
    if isinstance(value, dict):
        return all(_uploaded(v) for v in value.values())
    if isinstance(value, list):
        return all(_uploaded(v) for v in value)
    return not (isinstance(value, str) and value.startswith(LOCAL_MARK))


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "data:"))


def _endpoint(endpoint_id: str) -> Endpoint | None:
    try:
        return by_endpoint_id(endpoint_id)
    except UnknownModel:
        return None


# ---------------------------------------------------------------- hooks


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


# ---------------------------------------------------------------- admission


class Admission:
    """A FIFO of jobs waiting for one of `slots` places at fal.

    A job holds its slot from admission until its result is fetched (or it ends).
    Jobs resumed while already at fal `hold` a slot even beyond the limit: they
    are at fal whether or not we count them.
    """

    def __init__(self, slots: int, on_moved: Callable[[dict[int, int]], None]) -> None:
        self.slots = slots
        self._held: set[int] = set()
        self._queue: OrderedDict[int, asyncio.Future[None]] = OrderedDict()
        self._on_moved = on_moved

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def enqueue(self, job_id: int) -> int:
        """Join the line; 0 means admitted at once, else the 1-based position."""
        if job_id in self._held:
            return 0
        if job_id in self._queue:
            return self.position(job_id) or 0
        if not self._queue and len(self._held) < self.slots:
            self._held.add(job_id)
            return 0
        self._queue[job_id] = asyncio.get_running_loop().create_future()
        return len(self._queue)

    def hold(self, job_id: int) -> None:
        self._queue.pop(job_id, None)
        self._held.add(job_id)

    def position(self, job_id: int) -> int | None:
        for index, queued in enumerate(self._queue, start=1):
            if queued == job_id:
                return index
        return None

    async def wait(self, job_id: int) -> None:
        future = self._queue.get(job_id)
        if future is None:
            return
        try:
            await future
        except asyncio.CancelledError:
            if job_id in self._held:
                # The slot was granted just as the waiter was cancelled: pass it on.
                self.release(job_id)
            elif self._queue.pop(job_id, None) is not None:
                self._moved()
            raise

    def release(self, job_id: int) -> None:
        if job_id in self._queue:
            self._queue.pop(job_id)
            self._moved()
            return
        if job_id not in self._held:
            return
        self._held.discard(job_id)
        granted = False
        while self._queue and len(self._held) < self.slots:
            next_id, future = self._queue.popitem(last=False)
            if future.done():
                continue
            self._held.add(next_id)
            future.set_result(None)
            granted = True
        if granted:
            self._moved()

    def _moved(self) -> None:
        self._on_moved({job_id: index for index, job_id in enumerate(self._queue, start=1)})


# ---------------------------------------------------------------- per-job live state


class _CancelRequested(Exception):
    pass


class _GaveUp(Exception):
    """The job ran past `jobs.result_timeout_hours`."""


class _BadResult(Exception):
    pass


@dataclass
class _CardState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: float = -math.inf
    timer: asyncio.Task[None] | None = None
    editing: bool = False
    final_pending: bool = False
    final_sent: bool = False


@dataclass
class _Live:
    job: JobRecord
    port: ChatPort
    cancel_requested: bool = False
    cancelled_by: str | None = None
    handle: QueueHandle | None = None
    task: asyncio.Task[None] | None = None
    inner: asyncio.Task[Any] | None = None
    holds_slot: bool = False
    last_persist: float = -math.inf
    run_started: float | None = None
    card: _CardState = field(default_factory=_CardState)
    work: Path | None = None


# ---------------------------------------------------------------- the runner


class JobRunner:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        quota: Quota,
        fal: FalClient,
        http: httpx.AsyncClient,
        *,
        fetcher: media.Fetcher | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.quota = quota
        self.fal = fal
        self.http = http
        self.fetcher = fetcher or media.Fetcher(http, settings.media)
        self.hooks = RunnerHooks()
        self.admission = Admission(settings.backend.max_concurrent, self._positions_moved)
        self._ports: dict[str, ChatPort] = {}
        self._pending: dict[str, list[JobRecord]] = {}
        self._live: dict[int, _Live] = {}
        self._finished: dict[int, asyncio.Event] = {}
        self._critical: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        # Seconds a run typically takes per endpoint (moving average), for ETAs
        # before fal reports any progress.
        self._typical_run: dict[str, float] = {}
        self._started = False
        self._stopping = False
        self._work_root: Path | None = None

    # ------------------------------------------------------------ ports

    def register_port(self, port: ChatPort) -> None:
        self._ports[port.platform] = port
        if self._started and not self._stopping:
            waiting = self._pending.pop(port.platform, [])
            if waiting:
                log.info("%s adapter registered: resuming %d job(s)", port.platform, len(waiting))
            for job in waiting:
                self._launch(job, port)

    def port_for(self, platform: str) -> ChatPort | None:
        return self._ports.get(platform)

    @property
    def ports(self) -> dict[str, ChatPort]:
        return dict(self._ports)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._stopping = False
        removed = await asyncio.to_thread(media.cleanup_stale, self.settings.media)
        if removed:
            log.info("removed %d stale temporary file(s)", removed)
        self._work_root = await asyncio.to_thread(media.work_dir, self.settings.media)
        self._started = True
        jobs = await self.store.unfinished_jobs()
        # Jobs already at fal take their slots first; those waiting keep their order.
        order = {JobState.SUBMITTED: 0, JobState.IN_QUEUE: 0, JobState.RUNNING: 0,
                 JobState.DELIVERING: 1, JobState.ACCEPTED: 2, JobState.WAITING: 2}
        jobs.sort(key=lambda j: (order.get(j.state, 3), j.id))
        if jobs:
            log.info("resuming %d unfinished job(s)", len(jobs))
        for job in jobs:
            if job.id in self._live:
                continue
            port = self._ports.get(job.place.platform)
            if port is None:
                log.warning(
                    "job %d waits for the %s adapter to be registered", job.id, job.place.platform
                )
                self._pending.setdefault(job.place.platform, []).append(job)
                continue
            self._launch(job, port)

    async def stop(self) -> None:
        """Stop every task of this runner; job state stays as it is for the next start."""
        self._stopping = True
        drivers = [live.task for live in self._live.values() if live.task is not None]
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        # Shielded steps finish (a submit records its request id, a delivery its message).
        while self._critical:
            await asyncio.gather(*list(self._critical), return_exceptions=True)
        rest = list(self._background)
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        self._live.clear()
        self._pending.clear()
        self.admission = Admission(self.settings.backend.max_concurrent, self._positions_moved)
        self._started = False

    # ------------------------------------------------------------ public API

    async def start_job(
        self,
        inv: Invocation,
        request: GenerationRequest,
        inputs: Sequence[LocalMedia | None],
        *,
        parent_id: int | None = None,
        parent_kind: str | None = None,
    ) -> JobRecord:
        started = time.perf_counter()
        if self._stopping:
            raise UserError("The bot is restarting; please try again in a minute.")
        port = self._ports.get(inv.place.platform)
        if port is None:
            raise RuntimeError(f"no chat port registered for {inv.place.platform!r}")
        local: list[LocalMedia | None] = [
            inputs[i] if i < len(inputs) else None for i in range(len(request.media))
        ]
        for ref, item in zip(request.media, local, strict=True):
            if item is None and not _is_remote(ref.url):
                raise ValueError(f"input {ref.url!r} is neither uploaded media nor a URL")

        job = await self.quota.admit(
            inv.user, inv.place, request, parent_id=parent_id, parent_kind=parent_kind,
            status_message=inv.status_message, interaction=inv.interaction,
            workspace_word=port.traits.workspace_word,
        )
        self._mark(job.id, "submit_called", started)
        live = _Live(job=job, port=port)
        self._live[job.id] = live
        self._finished.setdefault(job.id, asyncio.Event())
        self._state_changed(live)
        try:
            card = self._card(live)
            if inv.status_message is not None:
                posted = await port.edit(inv.status_message, card)
            else:
                posted = await port.post(inv.place, card)
            live.card.last = time.monotonic()
            # Written with the next state change unless uploads come first: one
            # transaction less per job, at the price of a card that stays "preparing"
            # if the bot dies in the milliseconds between.
            pending: dict[str, Any] = {}
            if posted != job.status_message:
                pending["status_message"] = posted
                live.job.status_message = posted
            if any(item is not None for item in local):
                # Marks the slots as "not uploaded yet" for a restart in between.
                pending["input"] = request.with_urls(
                    [f"{LOCAL_MARK}{item.filename or item.path.name}" if item is not None
                     else ref_.url for ref_, item in zip(request.media, local, strict=True)]
                )
                await self._write(live, **pending)
                pending = {}
        except UserError as exc:
            # The platform refused in words the user can act on ("invite me to this
            # channel"): nothing unexpected, so no error report; the caller tells them.
            await self._fail(live, f"{exc} {REFUNDED}", "refused_by_platform")
            self._live.pop(job.id, None)
            raise
        except Exception as exc:
            text = report_unexpected(log, exc, f"posting the card of job {job.id}")
            await self._fail(live, text, "internal")
            self._live.pop(job.id, None)
            raise

        try:
            urls = await asyncio.gather(*(
                self._upload(item) if item is not None else _as_is(ref.url)
                for ref, item in zip(request.media, local, strict=True)
            ))
        except FalError as exc:
            log.warning("job %d: input upload failed: %s", job.id, exc)
            await self._fail(
                live,
                f"Your attachment could not be sent to fal ({exc.status or 'no answer'}). {REFUNDED}",
                "upload_failed",
            )
            self._live.pop(job.id, None)
            return live.job
        except Exception as exc:
            text = report_unexpected(log, exc, f"uploading the inputs of job {job.id}")
            await self._fail(live, text, "internal")
            self._live.pop(job.id, None)
            return live.job

        position = self.admission.enqueue(job.id)
        live.holds_slot = position == 0
        try:
            if request.slots:
                pending["input"] = request.with_urls(list(urls))
            await self._write(live, **pending, state=JobState.WAITING,
                              local_position=position or None)
        except BaseException:
            self.admission.release(job.id)
            live.holds_slot = False
            raise
        self._edit_soon(live)
        live.task = self._spawn_driver(live)
        return live.job

    async def cancel(self, job_id: int, by: User) -> JobRecord:
        live = self._live.get(job_id)
        job = live.job if live is not None else await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        if job.owner_key != by.key and not by.is_admin:
            raise PermissionDenied(f"Job #{job_id} is not yours to cancel.")
        if job.state.final:
            raise UserError(f"Job #{job_id} is already {_state_words(job.state)}.")
        if job.state is JobState.DELIVERING:
            raise UserError(
                f"Job #{job_id} has finished at fal and its video is being delivered; "
                "it can no longer be cancelled."
            )
        # A job still in submit() (uploading) has no driver yet; it checks the flag first thing.
        if live is not None and (live.task is None or not live.task.done()):
            live.cancel_requested = True
            live.cancelled_by = by.name
            if live.inner is not None:
                live.inner.cancel()
            record = await self.wait(job_id)
            if record.state is not JobState.CANCELLED:
                raise UserError(
                    f"Job #{job_id} was {_state_words(record.state)} before it could be cancelled."
                )
            return record
        # No driver here (its adapter is not registered, or the runner is stopped).
        orphan = _Live(job=job, port=self._ports.get(job.place.platform) or _NoPort())
        orphan.cancelled_by = by.name
        if job.fal_request_id:
            orphan.handle = self.fal.handle_for(job.endpoint_id, job.fal_request_id)
        pending = self._pending.get(job.place.platform, [])
        self._pending[job.place.platform] = [j for j in pending if j.id != job_id]
        await self._finish_cancelled(orphan)
        return orphan.job

    async def delete_result(self, job_id: int, by: User) -> None:
        job = await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        if job.owner_key != by.key and not by.is_admin:
            raise PermissionDenied(f"Job #{job_id} is not yours to delete.")
        if job.result_message is None:
            raise UserError(f"Job #{job_id} has no video to delete.")
        port = self._ports.get(job.result_message.platform) or self._ports.get(job.place.platform)
        if port is None:
            raise UserError("That chat platform is not connected right now; try again later.")
        await port.delete(job.result_message)
        await self.store.update_job(job_id, result_message=None)

    async def wait(self, job_id: int) -> JobRecord:
        event = self._finished.setdefault(job_id, asyncio.Event())
        job = await self.store.get_job(job_id)
        if job is None:
            self._finished.pop(job_id, None)
            raise NotFound(f"There is no job #{job_id}.")
        if job.state.final:
            if not event.is_set() and job_id not in self._live:
                self._finished.pop(job_id, None)
            return job
        await event.wait()
        job = await self.store.get_job(job_id)
        assert job is not None
        return job

    def live_job(self, job_id: int) -> JobRecord | None:
        """The in-memory record of a job this runner drives (with live positions/progress)."""
        live = self._live.get(job_id)
        return live.job if live is not None else None

    # ------------------------------------------------------------ the card

    def card_for(self, job: JobRecord) -> StatusCard:
        return self._build_card(job, run_started=None, cancelled_by=None)

    def _card(self, live: _Live) -> StatusCard:
        return self._build_card(live.job, live.run_started, live.cancelled_by)

    def _build_card(
        self, job: JobRecord, run_started: float | None, cancelled_by: str | None
    ) -> StatusCard:
        endpoint = _endpoint(job.endpoint_id)
        model = endpoint.title if endpoint is not None else job.endpoint_id
        now = _now()
        created = _aware(job.created_at)
        state = job.state
        lines: list[str] = []
        if job.prompt:
            lines.append(f"“{_short(job.prompt)}”")
        eta: datetime | None = None
        tone: Tone = "info"
        progress = job.progress
        stage = _STAGES[state]
        if state is JobState.WAITING and job.local_position:
            lines.append(f"Waiting for a free slot: #{job.local_position} in line")
        elif state is JobState.IN_QUEUE:
            if job.queue_position is not None:
                lines.append(f"In fal's queue: position {job.queue_position + 1}")
            else:
                lines.append("In fal's queue")
        elif state is JobState.RUNNING:
            eta = self._eta(job, now, run_started)
            if progress is not None:
                lines.append(f"Generating {progress_bar(progress)}")
            else:
                lines.append("Generating…")
        elif state is JobState.DONE:
            tone = "success"
            took = (_aware(job.finished_at) if job.finished_at else now) - created
            cost = f" · {job.settled_credits} credits" if job.settled_credits is not None else ""
            lines.append(f"Done in {format_duration(took.total_seconds())}{cost}")
            if job.error_message:
                lines.append(job.error_message)
            progress = 1.0
        elif state is JobState.FAILED:
            tone = "error"
            lines.append(job.error_message or f"The job failed. {REFUNDED}")
        elif state is JobState.CANCELLED:
            tone = "warning"
            who = f" by {cancelled_by}" if cancelled_by else ""
            lines.append(f"Cancelled{who}. {REFUNDED}")
        else:
            lines.append(stage + "…")
        if not state.final:
            lines.append(f"Elapsed {format_duration((now - created).total_seconds())}")
            if eta is not None:
                lines.append(f"ETA {format_duration((eta - now).total_seconds())}")
        actions = [] if state.final or state is JobState.DELIVERING else [
            Action(kind="cancel", job_id=job.id, label="Cancel")
        ]
        return StatusCard(
            title=f"Job #{job.id} · {model}",
            lines=lines,
            job_id=job.id,
            state=state.value,
            stage=stage,
            progress=progress if state in (JobState.RUNNING, JobState.DELIVERING, JobState.DONE) else None,
            local_position=job.local_position if state is JobState.WAITING else None,
            queue_position=job.queue_position if state is JobState.IN_QUEUE else None,
            started_at=job.started_at,
            eta=eta,
            actions=actions,
            tone=tone,
            final=state.final,
            link=job.result_url if state is JobState.DONE and job.error_message else None,
        )

    def _eta(self, job: JobRecord, now: datetime, run_started: float | None) -> datetime | None:
        if job.started_at is not None:
            started = _aware(job.started_at)
            elapsed = max(0.0, (now - started).total_seconds())
        elif run_started is not None:
            elapsed = max(0.0, time.monotonic() - run_started)
            started = now - timedelta(seconds=elapsed)
        else:
            return None
        progress = job.progress
        # Early progress readings are noise; a typical run time is a better guess then.
        if progress is not None and progress >= 0.05 and elapsed > 0:
            return now + timedelta(seconds=elapsed * (1 - progress) / progress)
        typical = self._typical_run.get(job.endpoint_id)
        if typical is not None:
            return max(now, started + timedelta(seconds=typical))
        return None

    def _summary(
        self, job: JobRecord, output: VideoOutput | None, info: MediaInfo | None, quota_text: str
    ) -> StatusCard:
        endpoint = _endpoint(job.endpoint_id)
        lines: list[str] = []
        if job.prompt:
            lines.append(f"“{_short(job.prompt, 200)}”")
        facts: list[str] = []
        if output is not None and output.seed is not None:
            facts.append(f"seed {output.seed}")
        if info is not None:
            if info.duration:
                facts.append(f"{info.duration:.1f} s")
            facts.append(f"{info.width}×{info.height}")
            facts.append(media.format_size(info.size_bytes))
        if facts:
            lines.append(" · ".join(facts))
        if job.settled_credits is not None:
            lines.append(f"Cost: {job.settled_credits} credits · {quota_text}")
        elif quota_text:
            lines.append(quota_text)
        return StatusCard(
            title=endpoint.title if endpoint is not None else job.endpoint_id,
            lines=lines,
            job_id=job.id,
            state=JobState.DONE.value,
            stage=_STAGES[JobState.DONE],
            progress=1.0,
            actions=[
                Action(kind="reroll", job_id=job.id, label="Re-roll"),
                Action(kind="extend", job_id=job.id, label="Extend"),
                Action(kind="continue", job_id=job.id, label="Continue"),
                Action(kind="delete", job_id=job.id, label="Delete"),
            ],
            tone="success",
            final=True,
        )

    # ------------------------------------------------------------ driving one job

    def _launch(self, job: JobRecord, port: ChatPort) -> None:
        live = _Live(job=job, port=port)
        self._live[job.id] = live
        self._finished.setdefault(job.id, asyncio.Event())
        if job.state in _AT_FAL:
            self.admission.hold(job.id)
            live.holds_slot = True
        elif job.state in (JobState.ACCEPTED, JobState.WAITING) and _uploaded(job.input):
            position = self.admission.enqueue(job.id)
            live.holds_slot = position == 0
            job.local_position = position or None
        live.task = self._spawn_driver(live)

    def _spawn_driver(self, live: _Live) -> asyncio.Task[None]:
        task = asyncio.create_task(self._drive(live), name=f"job-{live.job.id}")
        task.add_done_callback(_log_crash)
        return task

    async def _drive(self, live: _Live) -> None:
        job_id = live.job.id
        try:
            await self._advance(live)
        except asyncio.CancelledError:
            raise
        except _CancelRequested:
            await self._shielded(self._finish_cancelled(live))
        except _GaveUp:
            hours = self.settings.jobs.result_timeout_hours
            await self._shielded(
                self._fail(live, TIMEOUT_TEXT.format(hours=hours), "bot_timeout", cancel_at_fal=True)
            )
        except ResultExpired:
            await self._shielded(self._fail(live, EXPIRED_TEXT, "result_expired"))
        except FalValidationError as exc:
            await self._shielded(self._fail(live, f"{exc.message} {REFUNDED}", "validation_error"))
        except FalRequestFailed as exc:
            await self._shielded(self._fail(live, plain_failure(exc.error_type),
                                            exc.error_type or "request_failed"))
        except FalError as exc:
            log.warning("job %d: fal failed: %s", job_id, exc)
            if exc.upstream_fault or exc.status is None:
                text = f"fal is having trouble right now ({exc.status or 'no answer'}); please try again later. {REFUNDED}"
            else:
                text = f"fal refused the request (HTTP {exc.status}). {REFUNDED}"
            await self._shielded(self._fail(live, text, exc.error_type or "fal_error",
                                            cancel_at_fal=True))
        except _BadResult:
            text = f"fal sent a result the bot could not read. {REFUNDED}"
            await self._shielded(self._fail(live, text, "bad_result"))
        except UserError as exc:
            await self._shielded(self._fail(live, f"{exc.message} {REFUNDED}", "delivery"))
        except Exception as exc:
            text = report_unexpected(log, exc, f"job {job_id}")
            await self._shielded(self._fail(live, text, "internal", cancel_at_fal=True))
        finally:
            self._release_slot(live)
            if live.work is not None:
                shutil.rmtree(live.work, ignore_errors=True)
                live.work = None
            if self._live.get(job_id) is live and (live.job.state.final or self._stopping):
                self._live.pop(job_id, None)

    async def _advance(self, live: _Live) -> None:
        job = live.job
        if job.state in (JobState.ACCEPTED, JobState.WAITING):
            if not _uploaded(job.input):
                await self._shielded(self._fail(live, INPUTS_LOST_TEXT, "inputs_lost"))
                return
            if job.state is JobState.ACCEPTED:
                await self._write(live, state=JobState.WAITING,
                                  local_position=job.local_position)
                self._edit_soon(live)
            if not live.holds_slot:
                await self._interruptible(live, self.admission.wait(job.id))
                live.holds_slot = True
            self._check(live)
            await self._shielded(self._submit(live))
        elif job.state is JobState.SUBMITTED and not job.fal_request_id:
            self._check(live)
            await self._shielded(self._submit(live))
        elif job.fal_request_id and job.state in _AT_FAL:
            live.handle = self.fal.handle_for(job.endpoint_id, job.fal_request_id)
        if live.job.state in _AT_FAL:
            self._check(live)
            await self._interruptible(live, self._follow(live))
            self._check(live)
            output = await self._shielded(self._collect(live))
            self._release_slot(live)
        else:
            output = None
        if live.job.state is JobState.DELIVERING:
            await self._deliver(live, output)

    def _check(self, live: _Live) -> None:
        if live.cancel_requested:
            raise _CancelRequested()

    async def _interruptible(self, live: _Live, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` so that a user's cancel interrupts it (the driver then cancels the job)."""
        if live.cancel_requested:
            coro.close()
            raise _CancelRequested()
        inner = asyncio.create_task(coro)
        live.inner = inner
        try:
            return await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            stopping = current is not None and current.cancelling() > 0
            if live.cancel_requested and not stopping:
                raise _CancelRequested() from None
            raise
        finally:
            live.inner = None
            if not inner.done():
                inner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await inner

    async def _shielded(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a step that must not be torn in half by `stop()` (which waits for it)."""
        task = asyncio.create_task(coro)
        self._critical.add(task)
        task.add_done_callback(self._critical.discard)
        return await asyncio.shield(task)

    async def _submit(self, live: _Live) -> None:
        if self._stopping:
            raise asyncio.CancelledError()
        job = live.job
        if job.state is not JobState.SUBMITTED:
            await self._write(live, state=JobState.SUBMITTED, local_position=None)
            self._edit_soon(live)
        self._mark(job.id, "fal_submit", time.perf_counter())
        handle = await self.fal.enqueue(
            job.endpoint_id, job.input, webhook_url=self.settings.backend.webhook_url
        )
        live.handle = handle
        await self._write(live, fal_request_id=handle.request_id, state=JobState.IN_QUEUE)
        self._edit_soon(live)

    async def _follow(self, live: _Live) -> None:
        handle = live.handle
        assert handle is not None
        deadline = _aware(live.job.created_at) + timedelta(
            hours=self.settings.jobs.result_timeout_hours
        )
        remaining = (deadline - _now()).total_seconds()
        if remaining <= 0:
            raise _GaveUp()
        try:
            async with asyncio.timeout(remaining):
                # fal.events ends after the first final event; if a stream ever ends
                # without one, ask again a few times before calling it broken.
                for _attempt in range(5):
                    events = self.fal.events(handle)
                    try:
                        async for event in events:
                            if await self._on_event(live, event):
                                return
                    finally:
                        await _aclose(events)
                    if await self._on_event(live, await self.fal.status(handle)):
                        return
                raise FalError("fal's status never reached an end")
        except TimeoutError:
            raise _GaveUp() from None

    async def _on_event(self, live: _Live, event: FalEvent) -> bool:
        """Apply one fal event; True when the request is over at fal."""
        job = live.job
        if isinstance(event, Queued):
            if job.state is not JobState.IN_QUEUE:
                await self._write(live, state=JobState.IN_QUEUE, queue_position=event.position)
            else:
                job.queue_position = event.position
                await self._persist_soon(live)
            self._edit_soon(live)
            return False
        if isinstance(event, Running):
            progress = event.progress if event.progress is not None else job.progress
            if job.state is not JobState.RUNNING:
                live.run_started = time.monotonic()
                await self._write(live, state=JobState.RUNNING, queue_position=None,
                                  started_at=job.started_at or _now(), progress=progress)
            else:
                job.progress = progress
                await self._persist_soon(live)
            self._edit_soon(live)
            return False
        if isinstance(event, Completed):
            self._mark(job.id, "completed", time.perf_counter())
            if live.run_started is not None:
                took = time.monotonic() - live.run_started
                previous = self._typical_run.get(job.endpoint_id)
                self._typical_run[job.endpoint_id] = (
                    took if previous is None else 0.7 * previous + 0.3 * took
                )
            return True
        if isinstance(event, Failed):
            raise FalRequestFailed(event.message, status=event.status, error_type=event.error_type)
        raise AssertionError(f"unknown fal event {event!r}")

    async def _collect(self, live: _Live) -> VideoOutput:
        """Fetch and check the result and record it (state delivering)."""
        assert live.handle is not None
        job = live.job
        raw = await self.fal.result(live.handle)
        output = _parse_output(job.endpoint_id, raw)
        await self._write(live, state=JobState.DELIVERING, result=raw,
                          result_url=output.video.url, progress=1.0, queue_position=None)
        self._edit_soon(live)
        return output

    async def _settle(self, live: _Live, output: VideoOutput) -> None:
        job = live.job
        endpoint = by_endpoint_id(job.endpoint_id)
        usd = settle_usd(endpoint, output, job.input, self.settings.prices)
        credits = await self.quota.settle(job.id, usd)
        job.settled_credits = credits
        job.settled_usd = usd

    async def _deliver(self, live: _Live, output: VideoOutput | None) -> None:
        job = live.job
        if output is None:
            if job.result is None:
                raise _BadResult()
            output = _parse_output(job.endpoint_id, job.result)
        if self.hooks.before_delivery is not None:
            await self.hooks.before_delivery(job)
        port = live.port
        root = self._work_root
        if root is None:
            root = await asyncio.to_thread(media.work_dir, self.settings.media)
        # The download creates the directory: no thread hop just for a mkdir.
        work = root / f"job-{job.id}-{secrets.token_hex(3)}"
        live.work = work
        # The summary's quota line is read while the video downloads, not after.
        status = asyncio.create_task(self._quota_status(job))
        try:
            url = job.result_url or output.video.url
            self._mark(job.id, "download_start", time.perf_counter())
            original = await self.fetcher.download(url, work / "result.mp4", max_bytes=MAX_RESULT_BYTES)
            self._mark(job.id, "download_end", time.perf_counter())
            limit = port.upload_limit(job.place)
            fit = await asyncio.to_thread(media.fit_video, original, work, limit)
            poster: Path | None = None
            if fit.path is None:
                poster = await asyncio.to_thread(media.poster_frame, original, work)
            await self._shielded(self._send(live, output, fit, poster, limit, status))
        finally:
            status.cancel()

    async def _send(
        self,
        live: _Live,
        output: VideoOutput,
        fit: media.FitResult,
        poster: Path | None,
        limit: int,
        status: asyncio.Task[QuotaStatus | None],
    ) -> None:
        job = live.job
        port = live.port
        ref: MessageRef | None = None
        size: int | None = None
        # Settled only now, with the video in hand: quota.refund cannot undo a settlement,
        # so a download that fails before this point still gives the credits back.
        try:
            quota_status = await status
        except asyncio.CancelledError:
            # stop() cancelled the read (this step itself is shielded): send without it.
            if not status.cancelled():
                raise
            quota_status = None
        extra = 0
        if job.settled_credits is None:
            await self._settle(live, output)
            # The quota was read before this settlement replaced the estimate.
            extra = (job.settled_credits or 0) - job.estimate_credits
        note: str | None = None
        if await self.store.claim_delivery(job.id):
            summary = self._summary(job, output, fit.info, _quota_words(quota_status, extra))
            try:
                if fit.path is not None:
                    self._mark(job.id, "handed_to_port", time.perf_counter())
                    try:
                        ref = await port.send_video(job.place, fit.path, summary)
                        size = fit.info.size_bytes if fit.info is not None else None
                    except MediaError as refused:
                        # The platform refused the file after all (its real limit was lower
                        # than it told us): the poster and the link still reach the user.
                        poster = await asyncio.to_thread(media.poster_frame, fit.path, fit.path.parent)
                        ref = await self._send_poster(port, job, output, summary, poster, str(refused))
                else:
                    assert poster is not None
                    reason = fit.reason or (
                        f"The video is larger than this chat accepts ({media.format_size(limit)})."
                    )
                    self._mark(job.id, "handed_to_port", time.perf_counter())
                    ref = await self._send_poster(port, job, output, summary, poster, reason)
            except Exception as exc:
                # The generation is paid for and exists: point at it rather than fail the job.
                note = report_unexpected(log, exc, f"posting the video of job {job.id}")
                note = "The video could not be posted here. Download it with the link. " + note
        else:
            # Claimed by an earlier run that died mid-send: sending again could post twice.
            log.warning("job %d was already delivered (or its delivery was cut off)", job.id)
            note = "The video may not have been posted; download it with the link."
        changes: dict[str, Any] = {"state": JobState.DONE, "finished_at": _now()}
        if note is not None:
            changes["error_message"] = note
        if ref is not None:
            changes["result_message"] = ref
        if size is not None:
            changes["result_size"] = size
        await self._write(live, **changes)
        await self._final_card(live)
        self._signal(job.id)

    async def _send_poster(
        self, port: ChatPort, job: JobRecord, output: VideoOutput, summary: StatusCard,
        poster: Path, reason: str,
    ) -> MessageRef:
        summary.lines.append(reason)
        summary.lines.append("Download it from fal with the link; fal keeps it for about an hour.")
        summary.link = job.result_url or output.video.url
        summary.tone = "warning"
        return await port.send_image(job.place, poster, summary)

    async def _quota_status(self, job: JobRecord) -> QuotaStatus | None:
        try:
            return await self.quota.status(_owner(job), job.place)
        except Exception as exc:  # the summary must not fail a delivered job
            log.warning("job %d: quota status failed: %s", job.id, type(exc).__name__)
            return None

    async def _upload(self, item: LocalMedia) -> str:
        return await self.fal.upload(
            item.path, content_type=item.info.content_type,
            filename=item.filename or item.path.name,
        )

    # ------------------------------------------------------------ endings

    async def _fail(
        self, live: _Live, text: str, error_type: str, *, cancel_at_fal: bool = False
    ) -> None:
        prior = live.job.state
        await self._write(live, state=JobState.FAILED, error_message=text,
                          error_type=error_type, finished_at=_now())
        if cancel_at_fal and prior in _AT_FAL:
            await self._cancel_at_fal(live)
        await self.quota.refund(live.job.id)
        await self._final_card(live)
        self._signal(live.job.id)

    async def _finish_cancelled(self, live: _Live) -> None:
        prior = live.job.state
        await self._write(live, state=JobState.CANCELLED, finished_at=_now())
        if prior in _AT_FAL:
            await self._cancel_at_fal(live)
        await self.quota.refund(live.job.id)
        await self._final_card(live)
        self._signal(live.job.id)

    async def _cancel_at_fal(self, live: _Live) -> None:
        handle = live.handle
        if handle is None and live.job.fal_request_id:
            handle = self.fal.handle_for(live.job.endpoint_id, live.job.fal_request_id)
        if handle is None:
            return
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT_SECONDS):
                outcome = await self.fal.cancel(handle)
            log.info("job %d: cancel at fal: %s", live.job.id, outcome)
        except (FalError, TimeoutError) as exc:
            log.warning("job %d: could not cancel at fal: %s", live.job.id, type(exc).__name__)

    def _signal(self, job_id: int) -> None:
        event = self._finished.pop(job_id, None)
        if event is not None:
            event.set()

    def _release_slot(self, live: _Live) -> None:
        # Unconditional: a waiter cancelled before it ever ran is still in the line.
        live.holds_slot = False
        self.admission.release(live.job.id)

    # ------------------------------------------------------------ store and cards

    async def _write(self, live: _Live, **changes: Any) -> None:
        record = await self.store.update_job(live.job.id, **changes)
        # Only what was written is taken over: another write (a card's new message
        # reference, the quota's settlement) may have raced this one.
        for name in changes:
            setattr(live.job, name, getattr(record, name))
        live.job.updated_at = record.updated_at
        live.last_persist = time.monotonic()
        if "state" in changes:
            self._state_changed(live)

    def _state_changed(self, live: _Live) -> None:
        if self.hooks.on_state is not None:
            self.hooks.on_state(_snapshot(live.job))

    async def _persist_soon(self, live: _Live) -> None:
        if time.monotonic() - live.last_persist >= PERSIST_INTERVAL_SECONDS:
            await self._write(live, progress=live.job.progress,
                              queue_position=live.job.queue_position)

    def _positions_moved(self, positions: dict[int, int]) -> None:
        for job_id, live in self._live.items():
            if live.job.state not in (JobState.ACCEPTED, JobState.WAITING):
                continue
            position = positions.get(job_id)
            if position != live.job.local_position:
                live.job.local_position = position
                self._edit_soon(live)

    def _edit_soon(self, live: _Live) -> None:
        """Show the job's current state on its card, at most one edit per interval."""
        card = live.card
        if card.final_sent or card.final_pending or self._stopping or live.job.status_message is None:
            return
        if card.timer is None or card.timer.done():
            task = asyncio.create_task(self._flush(live))
            card.timer = task
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _flush(self, live: _Live) -> None:
        card = live.card
        async with card.lock:
            if card.final_pending or card.final_sent:
                return
            due = card.last + self.settings.jobs.edit_interval_seconds - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            if card.timer is asyncio.current_task():
                card.timer = None
            if card.final_sent or card.final_pending:
                return
            card.editing = True
            try:
                await self._edit(live, self._card(live))
            finally:
                card.editing = False

    async def _final_card(self, live: _Live) -> None:
        card = live.card
        card.final_pending = True
        timer = card.timer
        if timer is not None and not timer.done() and not card.editing:
            timer.cancel()
        async with card.lock:
            card.final_sent = True
            await self._edit(live, self._card(live))

    async def _edit(self, live: _Live, status: StatusCard) -> None:
        ref = live.job.status_message
        if ref is None or isinstance(live.port, _NoPort):
            return
        try:
            new_ref = await live.port.edit(ref, status)
        except Exception as exc:
            # A card that cannot be edited must never stop the job itself.
            log.warning("job %d: status card edit failed: %s", live.job.id, type(exc).__name__)
            return
        finally:
            live.card.last = time.monotonic()
        if new_ref != ref:
            await self.store.update_job(live.job.id, status_message=new_ref)
            live.job.status_message = new_ref

    def _mark(self, job_id: int, mark: str, at: float) -> None:
        if self.hooks.on_mark is not None:
            self.hooks.on_mark(job_id, mark, at)


# ---------------------------------------------------------------- helpers


_STAGES: dict[JobState, str] = {
    JobState.ACCEPTED: "Preparing",
    JobState.WAITING: "Waiting for a free slot",
    JobState.SUBMITTED: "Sending to fal",
    JobState.IN_QUEUE: "In fal's queue",
    JobState.RUNNING: "Generating",
    JobState.DELIVERING: "Uploading the video",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELLED: "Cancelled",
}


def _state_words(state: JobState) -> str:
    return {JobState.DONE: "done", JobState.FAILED: "failed",
            JobState.CANCELLED: "cancelled"}.get(state, state.value.replace("_", " "))


def _quota_words(status: QuotaStatus | None, extra: int = 0) -> str:
    if status is None:
        return ""
    if status.exempt:
        return f"{status.daily_used + extra} credits used today"
    return f"{max(0, status.daily_left - extra)} of {status.daily_limit} credits left today"


def _owner(job: JobRecord) -> User:
    return User(platform=job.owner_platform, id=job.owner_id, name=job.owner_name)


def _snapshot(job: JobRecord) -> JobRecord:
    return replace(job)


def _parse_output(endpoint_id: str, raw: dict[str, Any]) -> VideoOutput:
    endpoint = _endpoint(endpoint_id)
    model = endpoint.output_model if endpoint is not None else VideoOutput
    try:
        output = model.model_validate(raw)
    except ValidationError as exc:
        log.warning("result of %s did not validate: %s", endpoint_id, exc.error_count())
        raise _BadResult() from None
    if not isinstance(output, VideoOutput):
        raise _BadResult()
    return output


def _log_crash(task: asyncio.Task[None]) -> None:
    # The driver handles every job error itself; this is for the store failing under it.
    if not task.cancelled() and task.exception() is not None:
        log.error("job driver %s crashed", task.get_name(), exc_info=task.exception())


async def _as_is(url: str) -> str:
    return url


async def _aclose(events: AsyncIterator[FalEvent]) -> None:
    # Releases the status stream's connection at once instead of at garbage collection.
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


class _NoPort:
    """Stands in for an adapter that is not registered (a job cancelled while it waits)."""

    platform = "none"
    traits = PlatformTraits()

    async def post(self, place: Any, card: StatusCard) -> MessageRef:
        raise RuntimeError("no chat port")

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        return ref

    async def send_video(self, place: Any, path: Path, card: StatusCard) -> MessageRef:
        raise RuntimeError("no chat port")

    async def send_image(self, place: Any, path: Path, card: StatusCard) -> MessageRef:
        raise RuntimeError("no chat port")

    async def delete(self, ref: MessageRef) -> None:
        return None

    def upload_limit(self, place: Any) -> int:
        return 0

    async def tell(self, user: User, place: Any, text: str) -> None:
        return None

"""One job's state machine: wait for a slot, send to fal, follow it there, collect the
result, hand it to delivery, and end (done, failed or cancelled) with the card and
the credits settled.

Every state change is written to the store *before* the action it leads to, so a
restart finds the job at a step it can safely repeat or resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from bot import pause
from bot.catalog import UnknownModel, VideoOutput, by_endpoint_id
from bot.errors import (
    FalError,
    FalRequestFailed,
    FalValidationError,
    ResultExpired,
    UserError,
    report_unexpected,
)
from bot.fal import Completed, Failed, FalAccountError, FalEvent, Queued, QueueHandle, Running
from bot.jobs import cards, paused
from bot.jobs.cards import aware, utc_now
from bot.jobs.delivery import deliver
from bot.jobs.outage import (
    UNREACHABLE_TEXT,
    FalUnreachable,
    Outage,
    cancel_when_back,
    is_outage,
    never_sent,
)
from bot.jobs.runtime import Runtime
from bot.model import JobRecord, JobState
from bot.ports import ChatPort, MessageRef, StatusCard
from bot.store.protocol import LeaseRefused
from bot.throttle import EditThrottle, edit_interval

log = logging.getLogger(__name__)

T = TypeVar("T")

# Progress and queue positions change often; the card shows every change, the
# database only needs a recent value for the card after a restart.
PERSIST_INTERVAL_SECONDS = 10.0
# Best-effort calls on the way out (cancel at fal after a failure) must not hold a job open.
CLEANUP_TIMEOUT_SECONDS = 15.0
# An input slot that still points at the user's original file: the upload never finished.
LOCAL_MARK = "local:"
# How often a job holding a local slot asks the store again for a slot at fal while
# other processes on the store fill `backend.max_concurrent`.
FAL_SLOT_POLL_SECONDS = 0.5
# fal.events ends after the first final event; a stream that ends without one is asked
# again this many times before the job calls it broken.
STREAM_ATTEMPTS = 5
AT_FAL = (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)
WAITING = (JobState.ACCEPTED, JobState.WAITING)


class CancelRequested(Exception):
    """A user asked to cancel: the driver cancels at fal, refunds and ends the card."""


class LeaseLost(Exception):
    """Another process may drive this job now: this one stops, writing nothing more."""


class GaveUp(Exception):
    """The job ran past `jobs.result_timeout_hours`."""


class BadResult(Exception):
    """fal's result is not a video output the bot can read."""


class JobDriver:
    """One job's driver task, the only writer of its state.

    A user's cancel only raises `cancel_requested` and interrupts the driver where it
    waits (for a slot, for fal); the driver then cancels at fal, refunds and finishes
    the card. Steps that must not be torn in half by the runner's `stop()` run through
    `Runtime.shielded`. The card goes through one `EditThrottle` per job.
    """

    def __init__(self, rt: Runtime, job: JobRecord, port: ChatPort) -> None:
        self.rt = rt
        self.job = job
        self.port = port
        self.cancel_requested = False
        self.cancelled_by: str | None = None
        self.handle: QueueHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.inner: asyncio.Task[Any] | None = None  # what a cancel interrupts
        self.holds_slot = False
        self._slot_taken = False  # marked submitted here, not sent yet
        self.lost = False  # its lease went to another process: stop, write nothing more
        self.work: Path | None = None  # the delivery's scratch folder
        self._last_persist = -math.inf
        self._run_started: float | None = None  # monotonic, for the typical run time
        self.outage = Outage(job.id, rt.settings.jobs.fal_unreachable_minutes, self.edit_soon)
        self.paused = False  # waiting out a pause (bot/pause.py): the card says so
        interval = edit_interval(rt.settings.jobs.edit_interval_seconds, port.traits)
        self.card: EditThrottle[StatusCard] = EditThrottle(
            self._show, interval, label=f"job {job.id}: status card", spawn=rt.spawn_background)

    # ------------------------------------------------------------ the card

    def status_card(self) -> StatusCard:
        notice = UNREACHABLE_TEXT if self.outage.active else None
        if self.paused and self.job.state in WAITING:
            notice = pause.RETURNED_TEXT if self.job.unreserved else pause.WAITING_TEXT
        return cards.status_card(
            self.job, at=utc_now(), typical_seconds=self.rt.typical_run.get(self.job.endpoint_id),
            cancelled_by=self.cancelled_by, notice=notice)

    def edit_soon(self) -> None:
        """Show the job's current state on its card, at most one edit per interval."""
        if self.rt.stopping or self.job.status_message is None:
            return
        self.card.update(self.status_card())

    async def final_card(self) -> None:
        await self.card.finish(self.status_card())

    async def _show(self, card: StatusCard) -> None:
        ref = self.job.status_message
        if ref is None:
            return
        new_ref = await self.port.edit(ref, card)
        if new_ref != ref:
            await self.rt.store.update_job(self.job.id, status_message=new_ref)
            self.job.status_message = new_ref

    # ------------------------------------------------------------ the store

    async def write(self, **changes: Any) -> None:
        try:
            # Fenced by the lease: a process that lost the job to another writes nothing.
            record = await self.rt.store.update_held_job(self.job.id, **changes)
        except LeaseRefused:
            self.lost = True
            raise LeaseLost() from None
        # Only what was written is taken over: another write (a card's new message
        # reference, the quota's settlement) may have raced this one.
        for name in changes:
            setattr(self.job, name, getattr(record, name))
        self.job.updated_at = record.updated_at
        self._last_persist = time.monotonic()
        if "state" in changes:
            self.rt.state_changed(self.job)

    async def _persist_soon(self) -> None:
        if time.monotonic() - self._last_persist >= PERSIST_INTERVAL_SECONDS:
            await self.write(progress=self.job.progress, queue_position=self.job.queue_position)

    # ------------------------------------------------------------ driving

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"job-{self.job.id}")
        self.task.add_done_callback(_log_crash)

    async def _run(self) -> None:
        try:
            await self._drive()
        except LeaseLost:  # refused while ending the job (failing, cancelling)
            log.warning("job %d: another process holds its lease now; left to it", self.job.id)

    async def _drive(self) -> None:
        try:
            await self._advance()
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            self.lost = True
            log.warning("job %d: another process holds its lease now; not sent from here",
                        self.job.id)
        except CancelRequested:
            await self.rt.shielded(self.finish_cancelled())
        except Exception as exc:
            text, error_type, at_fal = self._ending(exc)
            await self.rt.shielded(self.fail(text, error_type, cancel_at_fal=at_fal))
        finally:
            self.release_slot()
            if self.work is not None:
                shutil.rmtree(self.work, ignore_errors=True)
                self.work = None
            drivers = self.rt.drivers
            if drivers.get(self.job.id) is self and (
                    self.job.state.final or self.rt.stopping or self.lost):
                drivers.pop(self.job.id, None)

    def _ending(self, exc: Exception) -> tuple[str, str, bool]:
        """(what the user reads, error_type, whether to cancel at fal) for an error that
        ends the job."""
        if isinstance(exc, FalUnreachable):
            minutes = self.rt.settings.jobs.fal_unreachable_minutes
            log.warning("job %d: fal unreachable for %g minutes; giving up on fal request %s "
                        "(fal may still run it and bill it)", self.job.id, minutes,
                        self.job.fal_request_id or "(none: it was never accepted)")
            return cards.UNREACHABLE_FAILED_TEXT.format(minutes=minutes), "fal_unreachable", True
        if isinstance(exc, paused.NoLongerFits):
            return exc.text, "quota", False  # its credits were given back during the pause
        if isinstance(exc, GaveUp):
            hours = self.rt.settings.jobs.result_timeout_hours
            return cards.TIMEOUT_TEXT.format(hours=hours), "bot_timeout", True
        if isinstance(exc, ResultExpired):
            return cards.EXPIRED_TEXT, "result_expired", False
        if isinstance(exc, FalValidationError):
            return f"{exc.message} {cards.REFUNDED}", "validation_error", False
        if isinstance(exc, FalRequestFailed):
            return cards.plain_failure(exc.error_type), exc.error_type or "request_failed", False
        if isinstance(exc, FalError):
            log.warning("job %d: fal failed: %s", self.job.id, exc)
            return cards.fal_trouble(exc), exc.error_type or "fal_error", True
        if isinstance(exc, BadResult):
            return cards.BAD_RESULT_TEXT, "bad_result", False
        if isinstance(exc, UserError):
            return f"{exc.message} {cards.REFUNDED}", "delivery", False
        return report_unexpected(log, exc, f"job {self.job.id}"), "internal", True

    async def _advance(self) -> None:
        job = self.job
        if job.state in WAITING:
            if not uploaded(job.input):
                await self.rt.shielded(self.fail(cards.INPUTS_LOST_TEXT, "inputs_lost"))
                return
            await self._wait_for_slot()
            await self._submit()
        elif job.state is JobState.SUBMITTED and not job.fal_request_id:
            # The submit window: fal may have accepted it before the process that sent it
            # died, and fal has no idempotency key, so this may run it (and bill it) twice.
            log.warning("job %d: marked submitted at %s with no fal request id recorded; "
                        "sending it to fal again (it may have been accepted already)",
                        job.id, aware(job.updated_at).isoformat(timespec="seconds"))
            self.check()
            await self._submit()
        elif job.fal_request_id and job.state in AT_FAL:
            self.handle = self.rt.fal.handle_for(job.endpoint_id, job.fal_request_id)
        output: VideoOutput | None = None
        if self.job.state in AT_FAL:
            self.check()
            await self.interruptible(self._follow())
            self.check()
            raw = await self.interruptible(self.through_outages(self._fetch_result))
            output = await self.rt.shielded(self._collect(raw))
            self.release_slot()
        if self.job.state is JobState.DELIVERING:
            await deliver(self, output or self._stored_output())

    def _stored_output(self) -> VideoOutput:
        # Resumed while delivering: the result was recorded before the restart.
        if self.job.result is None:
            raise BadResult()
        return parse_output(self.job.endpoint_id, self.job.result)

    async def _wait_for_slot(self) -> None:
        if self.job.state is JobState.ACCEPTED:
            await self.write(state=JobState.WAITING, local_position=self.job.local_position)
            self.edit_soon()
        if not self.holds_slot:
            await self.interruptible(paused.wait_in_line(self))
            self.holds_slot = True
        self.check()
        # A pause that begins while the job waits for a slot at fal sends it back here.
        while True:
            await self.interruptible(paused.while_paused(self))
            await self.interruptible(paused.reserve_again(self))
            if await self.interruptible(self._take_fal_slot()):
                break
        self.check()

    async def _submit(self) -> None:
        """Send the job to fal; while fal cannot be reached (the submit provably never
        arrived) or refuses the operator's account, the job waits and tries again."""
        while True:
            try:
                await self.rt.shielded(self.send_to_fal())
                self.outage.over()
                return
            except FalAccountError as exc:
                await self.rt.shielded(self._back_to_waiting())
                await self.rt.pauses.account_failed(exc, self.job.id)
            except FalError as exc:
                if not never_sent(exc):
                    raise
                await self.rt.shielded(self._back_to_waiting())
                await self.interruptible(self.outage.wait(exc))
            await self._wait_for_slot()

    async def _back_to_waiting(self) -> None:
        # Not at fal: a restart then sends it as a waiting job, not as "maybe accepted".
        self._slot_taken = False
        await self.write(state=JobState.WAITING, local_position=None)
        self.edit_soon()

    async def through_outages(self, step: Callable[[], Awaitable[T]], *,
                              wait_out_pauses: bool = True) -> T:
        """`step()` again and again while fal cannot be reached (up to the outage limit) or
        refuses the operator's account (until the pause is lifted; without
        `wait_out_pauses` that refusal is raised)."""
        while True:
            try:
                result = await step()
            except FalAccountError as exc:
                if not wait_out_pauses:
                    raise
                await self.rt.pauses.account_failed(exc, self.job.id)
                await paused.while_paused(self)
                continue
            except FalError as exc:
                if not is_outage(exc):
                    raise
                await self.outage.wait(exc)
                continue
            self.outage.over()
            return result

    async def _take_fal_slot(self) -> bool:
        """Wait until fewer than `backend.max_concurrent` jobs of the whole store (every
        process on it) are at fal, and mark this one submitted in the same transaction;
        False when a pause began meanwhile (the job is still waiting)."""
        limit = self.rt.settings.backend.max_concurrent
        # The lease then covers the whole submit: see `bot.store.leases.take_fal_slot`.
        hold = self.rt.fal.longest_call_seconds
        while not await self.rt.store.take_fal_slot(self.job.id, limit, hold):
            if not await self.rt.store.holds_lease(self.job.id):
                raise LeaseLost()
            if await self.rt.pauses.active(self.job.place):
                return False
            await asyncio.sleep(FAL_SLOT_POLL_SECONDS)
        self.job.state = JobState.SUBMITTED
        self.job.local_position = None
        self._slot_taken = True
        self.rt.state_changed(self.job)
        self.edit_soon()
        return True

    def request_cancel(self, by: str) -> None:
        """A user's cancel: interrupt the driver where it waits; it then ends the job."""
        self.cancel_requested = True
        self.cancelled_by = by
        if self.inner is not None:
            self.inner.cancel()

    def check(self) -> None:
        if self.cancel_requested:
            raise CancelRequested()

    async def interruptible(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` so that a user's cancel interrupts it (the driver then cancels the job)."""
        if self.cancel_requested:
            coro.close()
            raise CancelRequested()
        inner = asyncio.create_task(coro)
        self.inner = inner
        try:
            return await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            stopping = current is not None and current.cancelling() > 0
            if self.cancel_requested and not stopping:
                raise CancelRequested() from None
            raise
        finally:
            self.inner = None
            if not inner.done():
                inner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await inner

    async def send_to_fal(self) -> None:
        """Enqueue the job at fal and record its request id (shielded: both or neither)."""
        job = self.job
        if self.rt.stopping:
            if self._slot_taken:
                # Not sent: give the slot at fal back, so that nobody resends it as if
                # it might have been accepted.
                await self.write(state=JobState.WAITING)
            raise asyncio.CancelledError()
        if job.state is not JobState.SUBMITTED:
            await self.write(state=JobState.SUBMITTED, local_position=None)
            self.edit_soon()
        # The fence: once fal accepts a job it cannot be taken back, so it is sent only
        # by the process that holds its lease this moment. Taking the slot just now was
        # that fence already (it renewed the lease for a whole lease period).
        if not self._slot_taken and not await self.rt.store.holds_lease(
                job.id, self.rt.fal.longest_call_seconds):
            raise LeaseLost()
        self.rt.mark(job.id, "fal_submit")
        handle = await self.rt.fal.enqueue(
            job.endpoint_id, job.input, webhook_url=self.rt.settings.backend.webhook_url
        )
        self.handle = handle
        await self.write(fal_request_id=handle.request_id, state=JobState.IN_QUEUE)
        self.edit_soon()

    async def _follow(self) -> None:
        handle = self.handle
        assert handle is not None
        deadline = aware(self.job.created_at) + timedelta(
            hours=self.rt.settings.jobs.result_timeout_hours
        )
        remaining = (deadline - utc_now()).total_seconds()
        if remaining <= 0:
            raise GaveUp()
        try:
            async with asyncio.timeout(remaining):
                for _attempt in range(STREAM_ATTEMPTS):
                    if await self.through_outages(lambda: self._follow_once(handle)):
                        return
                raise FalError("fal's status never reached an end")
        except TimeoutError:
            raise GaveUp() from None

    async def _follow_once(self, handle: QueueHandle) -> bool:
        """Follow fal's events until they end; True when the request is over at fal."""
        events = self.rt.fal.events(handle)
        try:
            async for event in events:
                self.outage.over()
                if await self._on_event(event):
                    return True
        finally:
            await _aclose(events)
        return await self._on_event(await self.rt.fal.status(handle))

    async def _on_event(self, event: FalEvent) -> bool:
        """Apply one fal event; True when the request is over at fal."""
        if isinstance(event, Queued):
            await self._queued(event)
        elif isinstance(event, Running):
            await self._running(event)
        elif isinstance(event, Completed):
            self._completed()
            return True
        elif isinstance(event, Failed):
            raise FalRequestFailed(event.message, status=event.status, error_type=event.error_type)
        else:
            raise AssertionError(f"unknown fal event {event!r}")
        self.edit_soon()
        return False

    async def _queued(self, event: Queued) -> None:
        if self.job.state is not JobState.IN_QUEUE:
            await self.write(state=JobState.IN_QUEUE, queue_position=event.position)
        else:
            self.job.queue_position = event.position
            await self._persist_soon()

    async def _running(self, event: Running) -> None:
        job = self.job
        progress = event.progress if event.progress is not None else job.progress
        if job.state is not JobState.RUNNING:
            self._run_started = time.monotonic()
            await self.write(state=JobState.RUNNING, queue_position=None,
                             started_at=job.started_at or utc_now(), progress=progress)
        else:
            job.progress = progress
            await self._persist_soon()

    def _completed(self) -> None:
        self.rt.mark(self.job.id, "completed")
        if self._run_started is not None:
            took = time.monotonic() - self._run_started
            typical = self.rt.typical_run
            previous = typical.get(self.job.endpoint_id)
            # A moving average: recent runs count most, one slow run does not rule.
            typical[self.job.endpoint_id] = took if previous is None else 0.7 * previous + 0.3 * took

    async def _fetch_result(self) -> dict[str, Any]:
        assert self.handle is not None
        return await self.rt.fal.result(self.handle)

    async def _collect(self, raw: dict[str, Any]) -> VideoOutput:
        """Check the result and record it (state delivering)."""
        output = parse_output(self.job.endpoint_id, raw)
        await self.write(state=JobState.DELIVERING, result=raw, result_url=output.video.url,
                         progress=1.0, queue_position=None)
        self.edit_soon()
        return output

    # ------------------------------------------------------------ endings

    async def finish_done(self, ref: MessageRef | None, size: int | None, note: str | None) -> None:
        changes: dict[str, Any] = {"state": JobState.DONE, "finished_at": utc_now()}
        if note is not None:
            changes["error_message"] = note
        if ref is not None:
            changes["result_message"] = ref
        if size is not None:
            changes["result_size"] = size
        await self.write(**changes)
        await self.final_card()
        self.rt.signal(self.job.id)

    async def fail(self, text: str, error_type: str, *, cancel_at_fal: bool = False) -> None:
        prior = self.job.state
        await self.write(state=JobState.FAILED, error_message=text, error_type=error_type,
                         finished_at=utc_now())
        await self._refund_and_end(prior if cancel_at_fal else None)

    async def finish_cancelled(self) -> None:
        prior = self.job.state
        if self.outage.active and prior in AT_FAL and self.job.fal_request_id:
            # fal cannot hear a cancel now: end the job here at once (no retries in the
            # user's face) and cancel it at fal in the background once fal answers.
            await self.write(state=JobState.CANCELLED, finished_at=utc_now(),
                             error_message=cards.CANCEL_LATER_TEXT)
            await self._refund_and_end(None)
            self.rt.spawn_background(cancel_when_back(self))
            return
        await self.write(state=JobState.CANCELLED, finished_at=utc_now())
        await self._refund_and_end(prior)

    async def _refund_and_end(self, prior: JobState | None) -> None:
        if prior in AT_FAL:
            await self._cancel_at_fal()
        await self.rt.quota.refund(self.job.id)
        await self.final_card()
        self.rt.signal(self.job.id)

    async def _cancel_at_fal(self) -> None:
        job = self.job
        handle = self.handle
        if handle is None and job.fal_request_id:
            handle = self.rt.fal.handle_for(job.endpoint_id, job.fal_request_id)
        if handle is None:
            return
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT_SECONDS):
                outcome = await self.rt.fal.cancel(handle)
            log.info("job %d: cancel at fal: %s", job.id, outcome)
        except (FalError, TimeoutError) as exc:
            log.warning("job %d: could not cancel at fal: %s", job.id, type(exc).__name__)

    def release_slot(self) -> None:
        # Unconditional: a waiter cancelled before it ever ran is still in the line.
        self.holds_slot = False
        self.rt.admission.release(self.job.id)


# ---------------------------------------------------------------- helpers


def uploaded(value: Any) -> bool:
    """True when no media URL in a fal input still points at a local original."""
    if isinstance(value, dict):
        return all(uploaded(v) for v in value.values())
    if isinstance(value, list):
        return all(uploaded(v) for v in value)
    return not (isinstance(value, str) and value.startswith(LOCAL_MARK))


def parse_output(endpoint_id: str, raw: dict[str, Any]) -> VideoOutput:
    try:
        model = by_endpoint_id(endpoint_id).output_model
    except UnknownModel:
        model = VideoOutput
    try:
        output = model.model_validate(raw)
    except ValidationError as exc:
        log.warning("result of %s did not validate: %s", endpoint_id, exc.error_count())
        raise BadResult() from None
    if not isinstance(output, VideoOutput):
        raise BadResult()
    return output


def _log_crash(task: asyncio.Task[None]) -> None:
    # The driver handles every job error itself; this is for the store failing under it.
    if not task.cancelled() and task.exception() is not None:
        log.error("job driver %s crashed", task.get_name(), exc_info=task.exception())


async def _aclose(events: AsyncIterator[FalEvent]) -> None:
    # Releases the status stream's connection at once instead of at garbage collection.
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()

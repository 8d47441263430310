"""JobRunner: the facade the commands use to start, cancel, wait for and clean up jobs,
and the place that adopts every unfinished job again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bot import media
from bot.config import Settings
from bot.errors import FalError, NotFound, PermissionDenied, UserError, report_unexpected
from bot.fal import FalAccountError, FalClient
from bot.jobs import cards
from bot.jobs.admission import Admission
from bot.jobs.collector import settle_collector
from bot.jobs.driver import AT_FAL, LOCAL_MARK, WAITING, CancelRequested, JobDriver, uploaded
from bot.jobs.leases import LeaseKeeper
from bot.jobs.runtime import RunnerHooks, Runtime
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia
from bot.pause import ACCOUNT_TEXT, Pauses
from bot.ports import ChatPort, Invocation, MessageRef, PlatformTraits, StatusCard, User
from bot.quota import Quota
from bot.store import Store

log = logging.getLogger(__name__)

# How long a cancel of a job driven by another process waits for that process to end it.
REMOTE_CANCEL_WAIT_SECONDS = 5.0


class JobRunner:
    """Runs every job of this process from admission to the delivered video.

    `start_job` reserves the credits, posts the job's card, uploads its attachments
    and hands it to a `JobDriver` (one task per job, the only writer of its state),
    which waits for a slot in the `Admission` line, follows the job at fal and
    delivers it. `start` registers the process in the store and adopts every
    unfinished job whose lease is free, for the platforms it has a port for (see
    `LeaseKeeper`); `stop` ends every task, leaves each job where a restart can pick
    it up and releases the leases.
    """

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
        """`http` downloads results unless a `fetcher` (with its allowed hosts) is given."""
        self.settings = settings
        self.store = store
        self.quota = quota
        self.fal = fal
        self.fetcher = fetcher or media.Fetcher(http, settings.media)
        self.rt = Runtime(
            settings=settings, store=store, quota=quota, fal=fal, fetcher=self.fetcher,
            admission=self._new_admission(), pauses=Pauses(store, fal.probe),
        )
        self._ports: dict[str, ChatPort] = {}
        self.leases = LeaseKeeper(self.rt, lambda: sorted(self._ports), self._adopt_job)
        self._started = False

    @property
    def hooks(self) -> RunnerHooks:
        return self.rt.hooks

    @property
    def pauses(self) -> Pauses:
        return self.rt.pauses

    def _new_admission(self) -> Admission:
        return Admission(self.settings.backend.max_concurrent, self._positions_moved)

    # ------------------------------------------------------------ ports

    def register_port(self, port: ChatPort) -> None:
        self._ports[port.platform] = port
        if self._started and not self.rt.stopping:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # registered from outside the loop: the next heartbeat adopts
            # Its platform's free jobs are adoptable now.
            self.rt.spawn_background(self._adopt_free())

    async def _adopt_free(self) -> None:
        try:
            await self.leases.adopt_free()
        except Exception:
            log.warning("adopting free jobs failed; the heartbeat tries again", exc_info=True)

    def port_for(self, platform: str) -> ChatPort | None:
        return self._ports.get(platform)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Clean up old scratch files and resume every unfinished job."""
        self.rt.stopping = False
        # Hundreds of jobs in flight make Python's full collections long pauses.
        settle_collector()
        removed = await asyncio.to_thread(media.cleanup_stale, self.settings.media)
        if removed:
            log.info("removed %d stale temporary file(s)", removed)
        self.rt.work_root = await asyncio.to_thread(media.work_dir, self.settings.media)
        self._started = True
        await self.leases.start()
        self.pauses.start()

    async def stop(self) -> None:
        """Stop every task of this runner; job state stays as it is for the next start."""
        rt = self.rt
        rt.stopping = True
        await self.pauses.stop()
        await self.leases.stop()
        drivers = [d.task for d in rt.drivers.values() if d.task is not None]
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        # Shielded steps finish (a submit records its request id, a delivery its message).
        while rt.critical:
            await asyncio.gather(*list(rt.critical), return_exceptions=True)
        rest = list(rt.background)
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        rt.drivers.clear()
        rt.admission = self._new_admission()
        if self._started:
            await self.leases.release()
        self._started = False

    def _adopt_job(self, job: JobRecord) -> None:
        port = self._ports.get(job.place.platform)
        assert port is not None, "only jobs of registered platforms are adopted"
        self._adopt(job, port)

    def driving(self) -> list[JobRecord]:
        """The jobs this process drives now (its own and the ones it adopted)."""
        return [driver.job for driver in self.rt.drivers.values()]

    def _adopt(self, job: JobRecord, port: ChatPort) -> None:
        """Drive a job found unfinished in the store from where it stands."""
        driver = self._track(job, port)
        if job.state in AT_FAL:
            self.rt.admission.hold(job.id)
            driver.holds_slot = True
        elif job.state in WAITING and uploaded(job.input):
            position = self.rt.admission.enqueue(job.id)
            driver.holds_slot = position == 0
            job.local_position = position or None
        driver.start()

    def _track(self, job: JobRecord, port: ChatPort) -> JobDriver:
        driver = JobDriver(self.rt, job, port)
        self.rt.drivers[job.id] = driver
        self.rt.finished.setdefault(job.id, asyncio.Event())
        return driver

    # ------------------------------------------------------------ starting a job

    async def start_job(
        self,
        inv: Invocation,
        request: GenerationRequest,
        inputs: Sequence[LocalMedia | None],
        *,
        parent_id: int | None = None,
        parent_kind: str | None = None,
    ) -> JobRecord:
        """Admit a job (its credits reserved), show its card, upload its attachments and
        hand it to its driver. `inputs[i]` is the local file of `request.media[i]`, or
        None where that input is a URL already. Returns the job as it now stands."""
        started = time.perf_counter()
        if self.rt.stopping:
            raise UserError("The bot is restarting; please try again in a minute.")
        await self.pauses.refuse(inv.user, inv.place)
        port = self._ports.get(inv.place.platform)
        if port is None:
            raise RuntimeError(f"no chat port registered for {inv.place.platform!r}")
        local = _local_inputs(request, inputs)
        job = await self.quota.admit(
            inv.user, inv.place, request, parent_id=parent_id, parent_kind=parent_kind,
            status_message=inv.status_message, interaction=inv.interaction,
            workspace_word=port.traits.workspace_word,
        )
        self.rt.mark(job.id, "submit_called", started)
        driver = self._track(job, port)
        self.rt.state_changed(job)
        pending = await self._show_first_card(driver, inv, request, local)
        urls = await self._upload_inputs(driver, request, local)
        if urls is not None:
            await self._line_up(driver, request, urls, pending)
        return driver.job

    async def _show_first_card(
        self, driver: JobDriver, inv: Invocation, request: GenerationRequest,
        local: list[LocalMedia | None],
    ) -> dict[str, Any]:
        """Post the card (or fill in the platform's "thinking" message); returns the
        store changes still to write with the next state."""
        job = driver.job
        try:
            card = driver.status_card()
            if inv.status_message is not None:
                posted = await self._fill_in(driver, inv.status_message, card)
            else:
                posted = await driver.port.post(inv.place, card)
                driver.card.sent()
            # Written with the next state change unless uploads come first: one
            # transaction less per job, at the price of a card that stays "preparing"
            # if the bot dies in the milliseconds between.
            pending: dict[str, Any] = {}
            if posted != job.status_message:
                pending["status_message"] = posted
                job.status_message = posted
            if any(item is not None for item in local):
                # Marks the slots as "not uploaded yet" for a restart in between.
                pending["input"] = request.with_urls(
                    [f"{LOCAL_MARK}{item.filename or item.path.name}" if item is not None
                     else ref.url for ref, item in zip(request.media, local, strict=True)]
                )
                await driver.write(**pending)
                pending = {}
            return pending
        except UserError as exc:
            # The platform refused in words the user can act on ("invite me to this
            # channel"): nothing unexpected, so no error report; the caller tells them.
            await driver.fail(f"{exc} {cards.REFUNDED}", "refused_by_platform")
            self.rt.drivers.pop(job.id, None)
            raise
        except Exception as exc:
            text = report_unexpected(log, exc, f"posting the card of job {job.id}")
            await driver.fail(text, "internal")
            self.rt.drivers.pop(job.id, None)
            raise

    async def _fill_in(self, driver: JobDriver, ref: MessageRef, card: StatusCard) -> MessageRef:
        """Turn the platform's own "thinking" message into the card."""
        try:
            posted = await driver.port.edit(ref, card)
        except UserError:
            raise
        except Exception:
            # The message is there either way (the platform shows it as loading): the
            # card's throttle shows the card once the platform lets it; the job goes on.
            log.warning("job %d: the first card could not be shown yet", driver.job.id,
                        exc_info=True)
            driver.card.update(card)
            posted = ref
        driver.card.sent()  # a failed attempt paces the next one like a send
        return posted

    async def _upload_inputs(
        self, driver: JobDriver, request: GenerationRequest, local: list[LocalMedia | None]
    ) -> list[str] | None:
        """The fal URL of every input, or None when an upload failed (the job is over)."""
        job = driver.job

        async def upload_all() -> list[str]:
            # Through a fal outage like every other fal call (the card says so); a user's
            # cancel interrupts the waiting.
            return list(await asyncio.gather(*(
                driver.through_outages(partial(self._upload, item), wait_out_pauses=False)
                if item is not None else _as_is(ref.url)
                for ref, item in zip(request.media, local, strict=True)
            )))

        try:
            return await driver.interruptible(upload_all())
        except CancelRequested:
            await driver.finish_cancelled()
        except FalAccountError as exc:
            # The account, not the job: pause (see bot/pause.py). The attachments are not
            # kept once this command ends, so this job cannot wait: it ends refunded.
            await self.pauses.account_failed(exc, None)
            await driver.fail(f"{ACCOUNT_TEXT} {cards.REFUNDED}", "fal_account")
        except FalError as exc:
            log.warning("job %d: input upload failed: %s", job.id, exc)
            await driver.fail(cards.upload_failed(exc), "upload_failed")
        except Exception as exc:
            text = report_unexpected(log, exc, f"uploading the inputs of job {job.id}")
            await driver.fail(text, "internal")
        self.rt.drivers.pop(job.id, None)
        return None

    async def _upload(self, item: LocalMedia) -> str:
        return await self.fal.upload(
            item.path, content_type=item.info.content_type,
            filename=item.filename or item.path.name,
        )

    async def _line_up(
        self, driver: JobDriver, request: GenerationRequest, urls: list[str],
        pending: dict[str, Any],
    ) -> None:
        """Join the admission line (or take a free slot at once) and start the driver."""
        job_id = driver.job.id
        position = self.rt.admission.enqueue(job_id)
        driver.holds_slot = position == 0
        try:
            if request.slots:
                pending["input"] = request.with_urls(urls)
            await driver.write(**pending, state=JobState.WAITING, local_position=position or None)
        except BaseException:
            self.rt.admission.release(job_id)
            driver.holds_slot = False
            raise
        driver.edit_soon()
        driver.start()

    def _positions_moved(self, positions: dict[int, int]) -> None:
        for job_id, driver in self.rt.drivers.items():
            if driver.job.state not in WAITING:
                continue
            position = positions.get(job_id)
            if position != driver.job.local_position:
                driver.job.local_position = position
                driver.edit_soon()

    # ------------------------------------------------------------ after the start

    async def cancel(self, job_id: int, by: User) -> JobRecord:
        """Cancel a job (its owner or an admin) and refund it; returns the ended job."""
        driver = self.rt.drivers.get(job_id)
        job = driver.job if driver is not None else await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        _check_cancellable(job, by)
        # A job still in start_job() (uploading) has no driver task yet; it checks the flag
        # first thing.
        if driver is not None and (driver.task is None or not driver.task.done()):
            return await self._interrupt(driver, by)
        if self.store.lease is not None and not await self.store.adopt_job(job_id):
            # Another live process drives it: only it may end the job.
            return await self._cancel_elsewhere(job, by)
        # No driver anywhere (its adapter is not registered, or the runner is stopped).
        orphan = JobDriver(self.rt, job, self._ports.get(job.place.platform) or NoPort())
        orphan.cancelled_by = by.name
        await orphan.finish_cancelled()
        return orphan.job

    async def _cancel_elsewhere(self, job: JobRecord, by: User) -> JobRecord:
        """Leave the cancel for the process that drives the job (it acts at its next
        heartbeat) and wait a little for it to end there."""
        await self.store.request_cancel(job.id, by.name)
        deadline = time.monotonic() + max(REMOTE_CANCEL_WAIT_SECONDS, self.leases.seconds)
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.5, self.leases.seconds / 3))
            stored = await self.store.get_job(job.id)
            if stored is not None and stored.state.final:
                if stored.state is not JobState.CANCELLED:
                    raise UserError(f"Job #{job.id} was {cards.state_words(stored.state)} "
                                    "before it could be cancelled.")
                return stored
        raise UserError(f"Job #{job.id} is run by another bot process; it has been asked to "
                        "cancel it and will do so shortly.")

    async def _interrupt(self, driver: JobDriver, by: User) -> JobRecord:
        driver.request_cancel(by.name)
        record = await self.wait(driver.job.id)
        if record.state is not JobState.CANCELLED:
            raise UserError(f"Job #{record.id} was {cards.state_words(record.state)} "
                            "before it could be cancelled.")
        return record

    async def delete_result(self, job_id: int, by: User) -> None:
        """Delete a job's posted video (its owner or an admin)."""
        job = await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        if job.owner_key != by.key and not by.is_admin:
            raise PermissionDenied(f"Job #{job_id} is not yours to delete.")
        if job.result_message is None:
            raise UserError(f"Job #{job_id} has no video to delete.")
        if job.result_message.deleted:
            raise UserError(f"Job #{job_id} has no video to delete: it was deleted already.")
        port = self._ports.get(job.result_message.platform) or self._ports.get(job.place.platform)
        if port is None:
            raise UserError("That chat platform is not connected right now; try again later.")
        await port.delete(job.result_message)
        # Kept, marked: `jobs` says the video was deleted rather than offer it.
        await self.store.update_job(job_id, result_message=job.result_message.as_deleted())

    async def wait(self, job_id: int) -> JobRecord:
        """Until the job has ended (done, failed or cancelled); returns it as stored."""
        event = self.rt.finished.setdefault(job_id, asyncio.Event())
        job = await self.store.get_job(job_id)
        if job is None:
            self.rt.finished.pop(job_id, None)
            raise NotFound(f"There is no job #{job_id}.")
        if job.state.final:
            if not event.is_set() and job_id not in self.rt.drivers:
                self.rt.finished.pop(job_id, None)
            return job
        await event.wait()
        job = await self.store.get_job(job_id)
        assert job is not None
        return job

    def live_job(self, job_id: int) -> JobRecord | None:
        """The in-memory record of a job this runner drives (with live positions/progress)."""
        driver = self.rt.drivers.get(job_id)
        return driver.job if driver is not None else None


def _local_inputs(
    request: GenerationRequest, inputs: Sequence[LocalMedia | None]
) -> list[LocalMedia | None]:
    local = [inputs[i] if i < len(inputs) else None for i in range(len(request.media))]
    for ref, item in zip(request.media, local, strict=True):
        if item is None and not ref.url.startswith(("http://", "https://", "data:")):
            raise ValueError(f"input {ref.url!r} is neither uploaded media nor a URL")
    return local


def _check_cancellable(job: JobRecord, by: User) -> None:
    if job.owner_key != by.key and not by.is_admin:
        raise PermissionDenied(f"Job #{job.id} is not yours to cancel.")
    if job.state.final:
        raise UserError(f"Job #{job.id} is already {cards.state_words(job.state)}.")
    if job.state is JobState.DELIVERING:
        raise UserError(
            f"Job #{job.id} has finished at fal and its video is being delivered; "
            "it can no longer be cancelled."
        )


async def _as_is(url: str) -> str:
    return url


class NoPort:
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

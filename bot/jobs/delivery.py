"""Delivery of a finished job: download -> fit -> poster -> settle -> claim -> send.

The credits are settled only with the video in hand (a settlement cannot be
undone, so a download that fails first still refunds), and the store's delivery
claim makes sure a video is posted at most once, even across a restart mid-send.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot import media, metrics
from bot.catalog import VideoOutput, by_endpoint_id, settle_usd
from bot.errors import MediaError, report_unexpected
from bot.jobs import cards
from bot.model import JobRecord
from bot.ports import MessageRef, StatusCard, User
from bot.quota import QuotaStatus

if TYPE_CHECKING:
    from bot.jobs.driver import JobDriver

log = logging.getLogger(__name__)

# Results are fitted down to the platform's limit afterwards; this only stops a
# runaway download from filling the disk.
MAX_RESULT_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class Fitted:
    """The downloaded result made ready for this chat: a video that fits, or a poster."""

    output: VideoOutput
    fit: media.FitResult
    poster: Path | None
    limit: int  # the upload limit it was fitted to


@dataclass
class Posted:
    """What sending the result came to: the message it went into, or why it did not."""

    ref: MessageRef | None = None
    size: int | None = None
    note: str | None = None  # what went wrong, shown on the card with the link


async def deliver(driver: JobDriver, output: VideoOutput) -> None:
    """Bring the job's video to its chat and end the job as done."""
    rt = driver.rt
    job = driver.job
    if rt.hooks.before_delivery is not None:
        await rt.hooks.before_delivery(job)
    root = rt.work_root
    if root is None:
        root = await asyncio.to_thread(media.work_dir, rt.settings.media)
    # The download creates the directory: no thread hop just for a mkdir.
    work = root / f"job-{job.id}-{secrets.token_hex(3)}"
    driver.work = work
    # The summary's quota line is read while the video downloads, not after.
    status = asyncio.create_task(_quota_status(driver))
    try:
        fitted = await _fetch_and_fit(driver, output, work)
        await rt.shielded(_hand_over(driver, fitted, status))
    finally:
        status.cancel()


async def _fetch_and_fit(driver: JobDriver, output: VideoOutput, work: Path) -> Fitted:
    rt = driver.rt
    job = driver.job
    rt.mark(job.id, "download_start")
    # A job resumed after a restart of the built-in simulator holds a URL on its old
    # address: the record takes the current one, for the card's link and follow-ups.
    url = rt.fetcher.current_url(job.result_url or output.video.url)
    if url != job.result_url:
        await driver.write(result_url=url)
    # fetch_result, not download: a refusal must not read as the user's link.
    original = await rt.fetcher.fetch_result(url, work / "result.mp4", max_bytes=MAX_RESULT_BYTES)
    rt.mark(job.id, "download_end")
    limit = driver.port.upload_limit(job.place)
    fit = await asyncio.to_thread(media.fit_video, original, work, limit)
    poster = None
    if fit.path is None:
        poster = await asyncio.to_thread(media.poster_frame, original, work)
    return Fitted(output=output, fit=fit, poster=poster, limit=limit)


async def _hand_over(
    driver: JobDriver, fitted: Fitted, status: asyncio.Task[QuotaStatus | None]
) -> None:
    """Settle, claim and send (shielded as one step), then end the job as done."""
    job = driver.job
    try:
        quota_status = await status
    except asyncio.CancelledError:
        # stop() cancelled the read (this step itself is shielded): send without it.
        if not status.cancelled():
            raise
        quota_status = None
    extra = 0
    if job.settled_credits is None:
        await _settle(driver, fitted.output)
        # The quota was read before this settlement replaced the estimate.
        extra = (job.settled_credits or 0) - job.estimate_credits
    if await driver.rt.store.claim_delivery(job.id):
        summary = cards.summary_card(job, fitted.output, fitted.fit.info,
                                     cards.quota_words(quota_status, extra))
        posted = await _post(driver, fitted, summary)
    else:
        # Claimed by an earlier run that died mid-send: sending again could post twice.
        log.warning("job %d was already delivered (or its delivery was cut off)", job.id)
        posted = Posted(note=cards.NOT_POSTED_TEXT)
    await driver.finish_done(posted.ref, posted.size, posted.note)


async def _settle(driver: JobDriver, output: VideoOutput) -> None:
    job = driver.job
    rt = driver.rt
    usd = settle_usd(by_endpoint_id(job.endpoint_id), output, job.input, rt.settings.prices)
    job.settled_credits = await rt.quota.settle(job.id, usd)
    job.settled_usd = usd


async def _post(driver: JobDriver, fitted: Fitted, summary: StatusCard) -> Posted:
    job = driver.job
    fit = fitted.fit
    try:
        if fit.path is None:
            assert fitted.poster is not None
            reason = fit.reason or (
                f"The video is larger than this chat accepts ({media.format_size(fitted.limit)})."
            )
            driver.rt.mark(job.id, "handed_to_port")
            return Posted(ref=await _send_poster(driver, fitted, summary, fitted.poster, reason))
        driver.rt.mark(job.id, "handed_to_port")
        try:
            ref = await driver.port.send_video(job.place, fit.path, summary)
        except MediaError as refused:
            # The platform refused the file after all (its real limit was lower than it
            # told us): the poster and the link still reach the user.
            poster = await asyncio.to_thread(media.poster_frame, fit.path, fit.path.parent)
            return Posted(ref=await _send_poster(driver, fitted, summary, poster, str(refused)))
        size = fit.info.size_bytes if fit.info is not None else None
        metrics.delivered(size, fit.reencoded)
        return Posted(ref=ref, size=size)
    except Exception as exc:
        # The generation is paid for and exists: point at it rather than fail the job.
        note = report_unexpected(log, exc, f"posting the video of job {job.id}")
        return Posted(note=cards.POST_FAILED_TEXT + note)


async def _send_poster(
    driver: JobDriver, fitted: Fitted, summary: StatusCard, poster: Path, reason: str
) -> MessageRef:
    job = driver.job
    card = cards.poster_card(summary, reason, job.result_url or fitted.output.video.url)
    return await driver.port.send_image(job.place, poster, card)


async def _quota_status(driver: JobDriver) -> QuotaStatus | None:
    job = driver.job
    try:
        return await driver.rt.quota.status(_owner(job), job.place)
    except Exception:
        # The summary's quota line is a courtesy: it must not fail a delivered job.
        log.warning("job %d: quota status failed", job.id, exc_info=True)
        return None


def _owner(job: JobRecord) -> User:
    return User(platform=job.owner_platform, id=job.owner_id, name=job.owner_name)

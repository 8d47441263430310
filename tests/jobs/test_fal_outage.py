"""fal going away and coming back: a job follows through the outage (its card says
"fal is unreachable, still trying") for up to `[jobs] fal_unreachable_minutes`, is
delivered once when fal is back (no second submission, no second charge), and only
after the limit is failed, refunded, cancelled at fal and its request id logged.

The simulator really stops listening and a new one starts on the SAME port with the
same state directory, as a restarted fal-compatible server would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs import cards
from bot.jobs.outage import UNREACHABLE_TEXT
from bot.model import JobRecord, JobState
from bot.sim import SimOptions, Simulator
from tests.jobs.conftest import ALICE, Jobs, image_request, invocation, png_input

BOUND = 60.0  # an upper bound for a step, never an expectation of speed


@pytest.fixture
def sim_options(tmp_path: Path) -> SimOptions:
    return SimOptions(queue_seconds=0.0, run_seconds=1.0, concurrency=8, scale=0.1, steps=4,
                      keepalive_seconds=0.5, state_dir=tmp_path / "fal")


class Fal:
    """The simulator as a server that can go away and come back on its address."""

    def __init__(self, first: Simulator) -> None:
        self.first = first
        self.now: Simulator | None = first
        self.all = [first]

    async def go_away(self) -> None:
        assert self.now is not None
        await self.now.stop()
        self.now = None

    async def come_back(self) -> Simulator:
        again = Simulator(self.first.options, port=self.first.port)
        await again.start()
        assert again.url == self.first.url
        self.now = again
        self.all.append(again)
        return again

    def count(self, kind: str) -> int:
        return sum(sim.requests_by_kind[kind] for sim in self.all)


@pytest.fixture
async def fal(jobs: Jobs) -> AsyncIterator[Fal]:
    handle = Fal(jobs.sim)
    try:
        yield handle
    finally:
        # The first is stopped by its fixture; the ones started here are stopped here,
        # after the runners (the jobs fixture ends after this one).
        for runner in jobs.runners:
            await runner.stop()
        for sim in handle.all[1:]:
            await sim.stop()


async def _card_says(jobs: Jobs, job_id: int, text: str) -> None:
    async with asyncio.timeout(BOUND):
        while not any(card.stage == text for card in jobs.chat.status_cards(job_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_a_job_rides_out_an_outage_and_is_delivered_once(jobs: Jobs, fal: Fal) -> None:
    job = await jobs.submit_text("through the blackout")
    await jobs.states.wait(job.id, JobState.RUNNING)
    await fal.go_away()
    await _card_says(jobs, job.id, UNREACHABLE_TEXT)
    stored = await jobs.store.get_job(job.id)
    assert stored is not None and not stored.state.final
    await asyncio.sleep(1.0)  # longer than the client's own retries: still not failed
    assert not (await jobs.store.get_job(job.id) or stored).state.final

    await fal.come_back()
    async with asyncio.timeout(BOUND):
        done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE, done.error_message
    assert len(jobs.chat.videos(job.id)) == 1
    assert fal.count("submit") == 1
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]
    # Once fal answered, the card no longer says it is unreachable.
    assert jobs.chat.last_status(job.id).stage != UNREACHABLE_TEXT


async def test_a_submit_while_fal_is_away_waits_and_is_sent_once(jobs: Jobs, fal: Fal) -> None:
    await fal.go_away()
    job = await jobs.submit_text("before the lights came on")
    await _card_says(jobs, job.id, UNREACHABLE_TEXT)
    waiting = await jobs.store.get_job(job.id)
    assert waiting is not None and waiting.state is JobState.WAITING
    assert waiting.fal_request_id is None

    await fal.come_back()
    async with asyncio.timeout(BOUND):
        done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE, done.error_message
    assert fal.count("submit") == 1
    assert len(jobs.chat.videos(job.id)) == 1
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]


async def test_past_the_limit_the_job_fails_refunded_and_the_request_id_is_logged(
    jobs: Jobs, fal: Fal, caplog: pytest.LogCaptureFixture,
) -> None:
    jobs.settings.jobs.fal_unreachable_minutes = 0.03  # ~2 s
    job = await jobs.submit_text("into the void")
    await jobs.states.wait(job.id, JobState.RUNNING)
    request_id = (await jobs.store.get_job(job.id) or job).fal_request_id
    assert request_id
    await fal.go_away()
    with caplog.at_level(logging.WARNING, logger="bot.jobs.driver"):
        async with asyncio.timeout(BOUND):
            done = await jobs.runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_type == "fal_unreachable"
    assert done.error_message == cards.UNREACHABLE_FAILED_TEXT.format(minutes=0.03)
    assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and r.name == "bot.jobs.driver"]
    assert any(request_id in line and "fal unreachable" in line for line in warned), warned
    assert fal.count("submit") == 1


async def test_a_cancel_during_an_outage_ends_at_once_and_reaches_fal_later(
    jobs: Jobs, fal: Fal,
) -> None:
    job = await jobs.submit_text("never mind")
    await jobs.states.wait(job.id, JobState.RUNNING)
    request_id = (await jobs.store.get_job(job.id) or job).fal_request_id
    await fal.go_away()
    await _card_says(jobs, job.id, UNREACHABLE_TEXT)
    asked = time.monotonic()
    ended = await jobs.runner.cancel(job.id, ALICE)
    assert time.monotonic() - asked < 5.0  # no retries in the user's face
    assert ended.state is JobState.CANCELLED
    assert ended.error_message == cards.CANCEL_LATER_TEXT
    assert await jobs.charged(job.id) == 0
    card = await jobs.chat.wait_final(job.id)
    assert cards.CANCEL_LATER_TEXT in card.lines

    back = await fal.come_back()
    async with asyncio.timeout(BOUND):
        while back.requests_by_kind["cancel"] == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert request_id is not None and back.requests_by_id[request_id] >= 1
    assert jobs.chat.videos(job.id) == []



async def _start_image_job(jobs: Jobs, prompt: str) -> asyncio.Task[JobRecord]:
    """A job with a local attachment (uploaded to fal's CDN first), started in the
    background: while fal is away its start waits on the upload."""
    item = png_input(jobs.tmp_path / "in", jobs.settings)
    request = image_request(jobs.settings, "fox.png", prompt)
    return asyncio.create_task(jobs.runner.start_job(invocation(ALICE, prompt), request, [item]))


async def _only_job(jobs: Jobs) -> int:
    async with asyncio.timeout(BOUND):
        while not (ids := {c.job_id for c in jobs.chat.calls if c.job_id is not None}):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    (job_id,) = ids
    return job_id


async def test_an_input_upload_rides_out_an_outage(jobs: Jobs, fal: Fal) -> None:
    jobs.fal.max_retries = 1  # the client's own retries end soon; the job's go on
    await fal.go_away()
    start = await _start_image_job(jobs, "the fox waits for the lights")
    job_id = await _only_job(jobs)
    await _card_says(jobs, job_id, UNREACHABLE_TEXT)
    await asyncio.sleep(1.0)  # longer than the client's own retries: still not failed
    assert not start.done()
    stored = await jobs.store.get_job(job_id)
    assert stored is not None and not stored.state.final

    back = await fal.come_back()
    async with asyncio.timeout(BOUND):
        await start
        done = await jobs.runner.wait(job_id)
    assert done.state is JobState.DONE, done.error_message
    assert back.requests_by_kind["upload"] == 1 and fal.count("submit") == 1
    assert done.input["image_url"].startswith(back.url + "/files/")
    assert await jobs.ledger(job_id) == [("reserve", done.estimate_credits), ("settle", 0)]
    assert len(jobs.chat.videos(job_id)) == 1


async def test_an_upload_past_the_limit_fails_refunded(jobs: Jobs, fal: Fal) -> None:
    jobs.settings.jobs.fal_unreachable_minutes = 0.03  # ~2 s
    jobs.fal.max_retries = 1
    await fal.go_away()
    start = await _start_image_job(jobs, "nobody to take it")
    async with asyncio.timeout(BOUND):
        job = await start
    assert job.state is JobState.FAILED and job.error_type == "upload_failed"
    assert job.error_message is not None and "could not be sent to fal" in job.error_message
    assert await jobs.charged(job.id) == 0
    assert fal.count("submit") == 0


async def test_a_cancel_while_an_upload_waits_out_an_outage_ends_at_once(
    jobs: Jobs, fal: Fal,
) -> None:
    jobs.fal.max_retries = 1
    await fal.go_away()
    start = await _start_image_job(jobs, "never mind the fox")
    job_id = await _only_job(jobs)
    await _card_says(jobs, job_id, UNREACHABLE_TEXT)
    asked = time.monotonic()
    ended = await jobs.runner.cancel(job_id, ALICE)
    assert time.monotonic() - asked < 5.0  # not after the outage limit (30 minutes)
    assert ended.state is JobState.CANCELLED
    async with asyncio.timeout(BOUND):
        await start
    assert await jobs.charged(job_id) == 0
    assert (await jobs.chat.wait_final(job_id)).state == "cancelled"
    assert fal.count("submit") == 0


def test_only_a_submit_that_cannot_have_arrived_is_sent_again() -> None:
    from bot.errors import FalError, FalTransportError
    from bot.jobs.outage import is_outage, never_sent

    no_connection = FalTransportError("could not reach fal for submit", retryable=True)
    assert never_sent(no_connection) and is_outage(no_connection)
    for refused in (429, 503):
        assert never_sent(FalTransportError("busy", status=refused, retryable=True))
    # A gateway timeout may have passed the submit on: sending it again could bill twice.
    for maybe in (502, 504):
        gateway = FalTransportError("gateway", status=maybe, retryable=True)
        assert not never_sent(gateway) and is_outage(gateway)
    assert not never_sent(FalTransportError("read timeout after sending", retryable=False))
    assert not is_outage(FalError("refused", status=400))

"""fal refusing the operator's key (401) or account (403 "User is locked. Reason:
Exhausted balance"): an account state, not a job failure. Generation pauses (in the
store, for every process), the job fal refused goes back to waiting, waiting jobs
keep waiting with their credits given back to the user until generation resumes, the
operator is told once, new commands are refused before anything is fetched or
charged, and generation resumes when a probe succeeds or an admin resumes; each job
then reserves its credits again as a new one would, or ends free when it no longer can.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from bot.errors import FalError
from bot.fal import FalAccountError
from bot.model import JobState
from bot.pause import ACCOUNT_TEXT, FAL_ACCOUNT, RETURNED_TEXT, WAITING_TEXT, Paused
from bot.pause import ADMIN as ADMIN_PAUSE
from bot.store.pauses import EVERYWHERE
from tests.jobs.conftest import (
    ADMIN,
    ALICE,
    ROOM,
    Jobs,
    image_request,
    invocation,
    png_input,
    text_request,
)

BOUND = 60.0


async def _paused(jobs: Jobs) -> None:
    async with asyncio.timeout(BOUND):
        while not await jobs.store.pauses():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _card_says(jobs: Jobs, job_id: int, text: str) -> None:
    async with asyncio.timeout(BOUND):
        while not any(card.stage == text for card in jobs.chat.status_cards(job_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("fault", ["locked", "bad_key"])
async def test_an_account_refusal_pauses_and_the_jobs_wait_then_resume(
    jobs: Jobs, fault: str, caplog: pytest.LogCaptureFixture,
) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account(fault)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        first = await jobs.submit_text("out of money")
        await _paused(jobs)
        await _card_says(jobs, first.id, RETURNED_TEXT)
        stored = await jobs.store.get_job(first.id)
        assert stored is not None and stored.state is JobState.WAITING  # not failed
        assert stored.fal_request_id is None and stored.unreserved
        # Its credits are the user's again while it waits.
        assert await jobs.ledger(first.id) == [("reserve", 2), ("refund", -2)]
        assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 0
        assert await jobs.store.audit() == []
        [row] = await jobs.store.pauses()
        assert (row.scope, row.kind) == (EVERYWHERE, FAL_ACCOUNT)
        if fault == "locked":
            assert "User is locked. Reason: Exhausted balance" in row.reason
        else:
            assert "401" in row.reason

        # New commands are refused before anything is reserved.
        with pytest.raises(Paused) as refused:
            await jobs.runner.start_job(invocation(ALICE, "another"),
                                        text_request(jobs.settings, "another"), [])
        assert str(refused.value) == ACCOUNT_TEXT
        assert [j.id for j in await jobs.store.list_jobs(ALICE.key)] == [first.id]

        # Still refused: the probe keeps the pause.
        assert await jobs.runner.pauses.probe_once() is False
        jobs.sim.fail_account(None)
        assert await jobs.runner.pauses.probe_once() is True
        async with asyncio.timeout(BOUND):
            done = await jobs.runner.wait(first.id)
    assert done.state is JobState.DONE, done.error_message
    assert jobs.sim.requests_by_kind["submit"] >= 1
    assert len(jobs.sim.submitted) == 1  # accepted once
    # Reserved again before it was sent, then settled: charged once.
    assert await jobs.ledger(first.id) == [("reserve", 2), ("refund", -2), ("reserve", 2),
                                           ("settle", 0)]
    assert await jobs.charged(first.id) == 2 and await jobs.store.audit() == []
    assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 2
    assert await jobs.store.pauses() == []
    # Told once, at ERROR, without the key.
    told = [m for m in _errors(caplog) if "fal refused the operator's key or account" in m]
    assert len(told) == 1, _errors(caplog)


async def test_waiting_jobs_keep_waiting_and_the_operator_is_told_once(
    jobs: Jobs, caplog: pytest.LogCaptureFixture,
) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account("locked")
    with caplog.at_level(logging.INFO):
        started = [await jobs.submit_text(f"job {i}", seed=i) for i in range(3)]
        await _paused(jobs)
        for job in started:
            await _card_says(jobs, job.id, RETURNED_TEXT)
        await asyncio.sleep(0.3)
        for job in started:
            stored = await jobs.store.get_job(job.id)
            assert stored is not None and stored.state is JobState.WAITING and stored.unreserved
            assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
        assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 0
        assert await jobs.store.audit() == []
    told = [m for m in _errors(caplog) if "fal refused the operator's key or account" in m]
    assert len(told) == 1, _errors(caplog)
    assert len(jobs.sim.submitted) == 0

    # An admin resumes; fal works again: every job is delivered, each charged once.
    jobs.sim.fail_account(None)
    assert await jobs.runner.pauses.resume() == 1
    for job in started:
        async with asyncio.timeout(BOUND):
            done = await jobs.runner.wait(job.id)
        assert done.state is JobState.DONE, done.error_message
        assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2), ("reserve", 2),
                                             ("settle", 0)]
    assert len(jobs.sim.submitted) == 3
    assert await jobs.store.audit() == []


async def test_an_admin_resume_while_fal_still_refuses_pauses_again(jobs: Jobs) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account("bad_key")
    job = await jobs.submit_text("wrong key")
    await _paused(jobs)
    await jobs.runner.pauses.resume()
    # The job tries again, fal refuses again: paused again, the job still waiting.
    await _paused(jobs)
    stored = await jobs.store.get_job(job.id)
    assert stored is not None and not stored.state.final
    await jobs.runner.cancel(job.id, ADMIN)
    assert await jobs.charged(job.id) == 0
    assert await jobs.store.audit() == []


async def test_the_probe_asks_fal_something_that_needs_the_account(jobs: Jobs) -> None:
    await jobs.fal.probe()  # the account works: no error
    jobs.sim.fail_account("locked")
    with pytest.raises(FalAccountError) as locked:
        await jobs.fal.probe()
    assert locked.value.status == 403 and "Exhausted balance" in str(locked.value)
    jobs.sim.fail_account("bad_key")
    with pytest.raises(FalAccountError) as wrong:
        await jobs.fal.probe()
    assert wrong.value.status == 401
    assert jobs.sim.submitted == {}  # nothing was queued (or billed) to find out


async def test_the_simulator_s_account_fault_can_be_set_from_another_process(jobs: Jobs) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.put(f"{jobs.sim.url}/_sim/account", json={"fault": "locked"})
        assert answer.status_code == 200
        assert jobs.sim.account_fault == "locked"
        # A locked account still reads statuses (as fal's does), refuses submits.
        refused = await client.post(f"{jobs.sim.url}/fal-ai/ltx-video", json={"prompt": "x"})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("User is locked. Reason: Exhausted balance")
        bad = await client.put(f"{jobs.sim.url}/_sim/account", json={"fault": "broke"})
        assert bad.status_code == 422
        await client.put(f"{jobs.sim.url}/_sim/account", json={"fault": None})
    assert jobs.sim.account_fault is None


async def test_an_outage_is_not_an_account_failure(jobs: Jobs) -> None:
    # A 5xx says nothing about the account: no pause.
    error = FalError("fal answered HTTP 500", status=500)
    assert not isinstance(error, FalAccountError)
    jobs.sim.fail_next(500, 1, path_contains="/storage/auth/token")
    with pytest.raises(FalError) as failed:
        await jobs.fal.probe()
    assert not isinstance(failed.value, FalAccountError)


async def test_an_upload_refused_for_the_account_pauses_and_refunds(
    jobs: Jobs, caplog: pytest.LogCaptureFixture,
) -> None:
    # The attachments live only as long as the command: this job cannot wait, so it ends
    # refunded, and generation pauses like for a refused submit.
    jobs.sim.fail_account("locked")
    item = png_input(jobs.tmp_path / "in", jobs.settings)
    with caplog.at_level(logging.ERROR):
        job = await jobs.runner.start_job(invocation(), image_request(jobs.settings, "fox.png"),
                                          [item])
    assert job.state is JobState.FAILED and job.error_type == "fal_account"
    assert job.error_message is not None and job.error_message.startswith(ACCOUNT_TEXT)
    assert await jobs.charged(job.id) == 0
    [row] = await jobs.store.pauses()
    assert row.kind == FAL_ACCOUNT
    assert len([m for m in _errors(caplog) if "fal refused the operator's key" in m]) == 1
    assert jobs.sim.requests_by_kind["submit"] == 0


@pytest.mark.parametrize("max_concurrent", [1])
async def test_jobs_waiting_in_line_give_their_credits_back_and_take_them_again(
    jobs: Jobs, max_concurrent: int,
) -> None:
    # One slot: the first job meets the refusal, the others wait in the local line.
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account("locked")
    started = [await jobs.submit_text(f"in line {i}", seed=i) for i in range(3)]
    await _paused(jobs)
    for job in started:
        await _card_says(jobs, job.id, RETURNED_TEXT)
    for job in started:
        assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 0
    assert await jobs.store.audit() == []

    jobs.sim.fail_account(None)
    assert await jobs.runner.pauses.probe_once() is True
    for job in started:
        async with asyncio.timeout(BOUND):
            done = await jobs.runner.wait(job.id)
        assert done.state is JobState.DONE, done.error_message
        assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2), ("reserve", 2),
                                             ("settle", 0)]
    assert len(jobs.sim.submitted) == 3
    assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 6
    assert await jobs.store.audit() == []


async def test_a_job_the_user_can_no_longer_pay_for_ends_free_with_the_quota_message(
    jobs: Jobs,
) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account("locked")
    job = await jobs.submit_text("too dear now")
    await _paused(jobs)
    await _card_says(jobs, job.id, RETURNED_TEXT)
    # While it waited, the operator lowered the daily quota below its cost.
    jobs.settings.quota.daily_credits = 1
    jobs.sim.fail_account(None)
    await jobs.runner.pauses.resume()
    async with asyncio.timeout(BOUND):
        done = await jobs.runner.wait(job.id)
    assert done.state is JobState.FAILED and done.error_type == "quota"
    assert done.error_message is not None
    assert done.error_message.startswith("This job costs 2 credits, more than your whole "
                                         "daily quota of 1 credits."), done.error_message
    assert "refunded" not in done.error_message.lower()
    card = await jobs.chat.wait_final(job.id)
    assert any(done.error_message in line for line in card.lines), card.lines
    assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    assert await jobs.charged(job.id) == 0 and await jobs.store.audit() == []
    assert jobs.sim.submitted == {}


async def test_a_cancel_of_a_job_whose_credits_went_back_refunds_nothing_more(
    jobs: Jobs,
) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.fail_account("bad_key")
    job = await jobs.submit_text("never mind")
    await _paused(jobs)
    await _card_says(jobs, job.id, RETURNED_TEXT)
    ended = await jobs.runner.cancel(job.id, ALICE)
    assert ended.state is JobState.CANCELLED
    assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    assert (await jobs.quota.status(ALICE, ROOM)).daily_used == 0
    assert await jobs.store.audit() == []


@pytest.mark.parametrize("max_concurrent", [1])
async def test_an_admin_pause_keeps_the_waiting_jobs_reserved(
    jobs: Jobs, max_concurrent: int,
) -> None:
    jobs.runner.rt.pause_poll_seconds = 0.05
    jobs.sim.options.run_seconds = 1.0
    first = await jobs.submit_text("at fal")
    second = await jobs.submit_text("in line", seed=3)
    await jobs.runner.pauses.pause(EVERYWHERE, ADMIN_PAUSE, "maintenance", "root")
    await _card_says(jobs, second.id, WAITING_TEXT)
    assert await jobs.ledger(second.id) == [("reserve", 2)]
    await jobs.runner.pauses.resume()
    for job in (first, second):
        async with asyncio.timeout(BOUND):
            done = await jobs.runner.wait(job.id)
        assert done.state is JobState.DONE, done.error_message
        assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]

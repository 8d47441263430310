"""start() after stop() (or a crash): every unfinished job picks up where it was."""

from __future__ import annotations

import asyncio

from bot.jobs import EXPIRED_TEXT, INPUTS_LOST_TEXT, JobRunner
from bot.model import JobRecord, JobState
from bot.ports import Place
from tests.fakes.chat import FakeChat
from tests.jobs.conftest import ALICE, Jobs, image_request, text_request


async def test_result_expired_on_resume_fails_and_refunds(jobs: Jobs) -> None:
    jobs.sim.options.run_seconds = 0.5
    job = await jobs.submit_text("too late")
    await jobs.states.wait(job.id, JobState.RUNNING)
    await jobs.runner.stop()
    running = await jobs.store.get_job(job.id)
    assert running is not None and running.state is JobState.RUNNING
    assert running.fal_request_id is not None
    # fal finishes while the bot is down, and drops the result before it comes back.
    await jobs.sim.wait_state(running.fal_request_id, "COMPLETED")
    jobs.sim.options.result_ttl_seconds = 0.0

    runner = jobs.new_runner()
    await runner.start()
    done = await runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_message == EXPIRED_TEXT
    assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    card = await jobs.chat.wait_final(job.id)
    assert EXPIRED_TEXT in card.lines
    assert jobs.sim.requests_by_kind["submit"] == 1


async def test_stopped_while_running_resumes_without_resubmitting(jobs: Jobs) -> None:
    jobs.sim.options.run_seconds = 0.5
    job = await jobs.submit_text("keep going")
    await jobs.states.wait(job.id, JobState.RUNNING)
    await jobs.runner.stop()

    runner = jobs.new_runner()
    await runner.start()
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE
    assert jobs.sim.requests_by_kind["submit"] == 1
    assert len(jobs.chat.videos(job.id)) == 1
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]


async def test_stopped_while_delivering_delivers_once_after_restart(jobs: Jobs) -> None:
    parked = asyncio.Event()

    async def park(job: JobRecord) -> None:
        parked.set()
        await asyncio.Event().wait()

    jobs.runner.hooks.before_delivery = park
    job = await jobs.submit_text("hold it")
    await parked.wait()
    await jobs.runner.stop()
    record = await jobs.store.get_job(job.id)
    assert record is not None and record.state is JobState.DELIVERING
    assert record.settled_credits is None  # settled only once the video is in hand

    runner = jobs.new_runner()
    await runner.start()
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE
    assert len(jobs.chat.videos(job.id)) == 1
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]
    assert jobs.sim.requests_by_kind["submit"] == 1
    assert jobs.sim.requests_by_kind["result"] == 1  # the stored result was used


async def test_submitted_without_request_id_is_submitted_again(jobs: Jobs) -> None:
    await jobs.runner.stop()
    request = text_request(jobs.settings, "lost in the mail")
    job = await jobs.quota.admit(ALICE, Place("console", "general", "local"), request)
    # The crash came between writing "submitted" and learning fal's request id.
    await jobs.store.update_job(job.id, state=JobState.SUBMITTED)

    runner = jobs.new_runner()
    await runner.start()
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE
    assert done.fal_request_id is not None
    assert jobs.sim.requests_by_kind["submit"] == 1


async def test_inputs_never_uploaded_fail_with_a_retry_message(jobs: Jobs) -> None:
    jobs.runner.hooks.on_state = jobs.states
    await jobs.runner.stop()
    request = image_request(jobs.settings, "fox.png")
    job = await jobs.quota.admit(ALICE, Place("console", "general", "local"), request)
    # What submit() writes before uploading: the slot still names the user's file.
    await jobs.store.update_job(job.id, input={**job.input, "image_url": "local:fox.png"})

    runner = jobs.new_runner()
    await runner.start()
    done = await runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_message == INPUTS_LOST_TEXT
    assert await jobs.charged(job.id) == 0
    assert jobs.sim.requests_by_kind["submit"] == 0


async def test_waiting_jobs_resume_in_their_order(jobs: Jobs) -> None:
    await jobs.runner.stop()
    for prompt in ("first", "second", "third"):
        job = await jobs.quota.admit(ALICE, Place("console", "general", "local"),
                                     text_request(jobs.settings, prompt))
        await jobs.store.update_job(job.id, state=JobState.WAITING)
    jobs.settings.backend.max_concurrent = 1
    runner = jobs.new_runner()
    await runner.start()
    for job_id in (1, 2, 3):
        assert (await runner.wait(job_id)).state is JobState.DONE
    assert [e["input"]["prompt"] for e in jobs.sim.submitted.values()] == ["first", "second", "third"]


async def test_a_job_waits_for_its_platform_to_be_registered(jobs: Jobs) -> None:
    await jobs.runner.stop()
    slack_place = Place("slack", "C1", "T1")
    job = await jobs.quota.admit(ALICE, slack_place, text_request(jobs.settings, "on slack"))
    await jobs.store.update_job(job.id, state=JobState.WAITING)

    runner = jobs.new_runner()  # only the console port
    await runner.start()
    record = await jobs.store.get_job(job.id)
    assert record is not None and record.state is JobState.WAITING
    assert runner.live_job(job.id) is None
    assert jobs.sim.requests_by_kind["submit"] == 0

    slack = FakeChat("slack")
    runner.register_port(slack)
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE
    assert len(slack.videos(job.id)) == 1
    assert jobs.chat.videos() == []


async def test_a_job_pending_its_platform_can_be_cancelled(jobs: Jobs) -> None:
    await jobs.runner.stop()
    job = await jobs.quota.admit(ALICE, Place("slack", "C1", "T1"),
                                 text_request(jobs.settings, "never mind"))
    await jobs.store.update_job(job.id, state=JobState.WAITING)
    runner = JobRunner(jobs.settings, jobs.store, jobs.quota, jobs.fal, jobs.http)
    jobs.runners.append(runner)
    await runner.start()
    cancelled = await runner.cancel(job.id, ALICE)
    assert cancelled.state is JobState.CANCELLED
    assert await jobs.charged(job.id) == 0
    runner.register_port(FakeChat("slack"))  # nothing left to resume
    assert runner.live_job(job.id) is None

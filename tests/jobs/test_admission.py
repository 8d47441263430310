"""The local admission queue and cancelling at every stage."""

from __future__ import annotations

import pytest

from bot.errors import NotFound, PermissionDenied, UserError
from bot.model import JobState
from tests.jobs.conftest import ADMIN, ALICE, BOB, Jobs


@pytest.fixture
def max_concurrent() -> int:
    return 1


async def test_jobs_wait_their_turn_and_see_their_position(jobs: Jobs) -> None:
    # Long enough that the first job is still at fal while the others are posted.
    jobs.sim.options.run_seconds = 0.6
    first = await jobs.submit_text("one")
    second = await jobs.submit_text("two")
    third = await jobs.submit_text("three")
    assert (first.local_position, second.local_position, third.local_position) == (None, 1, 2)

    for job in (first, second, third):
        done = await jobs.runner.wait(job.id)
        assert done.state is JobState.DONE

    # Positions shown on the cards: 1 for the second; 2 then 1 for the third.
    second_positions = [c.local_position for c in jobs.chat.status_cards(second.id)
                        if c.local_position is not None]
    third_positions = [c.local_position for c in jobs.chat.status_cards(third.id)
                       if c.local_position is not None]
    assert second_positions[0] == 1 and set(second_positions) == {1}
    assert third_positions[0] == 2 and 1 in third_positions
    assert third_positions == sorted(third_positions, reverse=True)
    assert any("Place in line #2" in c.text() for c in jobs.chat.status_cards(third.id))

    # Submitted to fal one at a time, in order.
    prompts = [entry["input"]["prompt"] for entry in jobs.sim.submitted.values()]
    assert prompts == ["one", "two", "three"]
    assert jobs.states.at_fal_peak == 1
    assert len(jobs.chat.videos()) == 3


async def test_cancel_while_waiting_never_reaches_fal(jobs: Jobs) -> None:
    jobs.sim.options.run_seconds = 0.6
    first = await jobs.submit_text("runs")
    waiting = await jobs.submit_text("waits")
    assert waiting.state is JobState.WAITING and waiting.local_position == 1

    cancelled = await jobs.runner.cancel(waiting.id, ALICE)
    assert cancelled.state is JobState.CANCELLED
    assert await jobs.ledger(waiting.id) == [("reserve", 2), ("refund", -2)]
    card = await jobs.chat.wait_final(waiting.id)
    assert card.state == "cancelled" and card.actions == []
    assert any("Cancelled by Alice" in line for line in card.lines)

    assert (await jobs.runner.wait(first.id)).state is JobState.DONE
    assert [e["input"]["prompt"] for e in jobs.sim.submitted.values()] == ["runs"]
    assert jobs.states.history[waiting.id][-1] is JobState.CANCELLED
    assert JobState.SUBMITTED not in jobs.states.history[waiting.id]


@pytest.mark.parametrize("max_concurrent", [2])
async def test_cancel_while_queued_at_fal(jobs: Jobs) -> None:
    jobs.sim.options.concurrency = 1
    jobs.sim.options.run_seconds = 30.0  # the first job holds fal's only slot until cancelled
    first = await jobs.submit_text("holds the slot")
    queued = await jobs.submit_text("queued behind it")
    await jobs.states.wait(queued.id, JobState.IN_QUEUE)
    record = await jobs.store.get_job(queued.id)
    assert record is not None and record.fal_request_id is not None
    assert jobs.sim.job_state(record.fal_request_id) == "IN_QUEUE"

    cancelled = await jobs.runner.cancel(queued.id, ALICE)
    assert cancelled.state is JobState.CANCELLED
    assert jobs.sim.requests_by_kind["cancel"] == 1
    assert jobs.sim.job_state(record.fal_request_id) == "COMPLETED"  # removed from fal's queue
    assert await jobs.charged(queued.id) == 0

    # And the running one, by an admin.
    await jobs.states.wait(first.id, JobState.RUNNING)
    stopped = await jobs.runner.cancel(first.id, ADMIN)
    assert stopped.state is JobState.CANCELLED
    assert stopped.fal_request_id is not None
    await jobs.sim.wait_state(stopped.fal_request_id, "COMPLETED")
    assert jobs.sim.requests_by_kind["cancel"] == 2
    assert await jobs.ledger(first.id) == [("reserve", 2), ("refund", -2)]
    assert jobs.chat.videos() == []
    assert (await jobs.chat.wait_final(first.id)).state == "cancelled"


async def test_cancel_rules(jobs: Jobs) -> None:
    jobs.sim.options.run_seconds = 30.0
    job = await jobs.submit_text("mine")
    with pytest.raises(PermissionDenied):
        await jobs.runner.cancel(job.id, BOB)
    with pytest.raises(NotFound):
        await jobs.runner.cancel(9999, ALICE)
    await jobs.states.wait(job.id, JobState.RUNNING)
    await jobs.runner.cancel(job.id, ALICE)
    with pytest.raises(UserError, match="already cancelled"):
        await jobs.runner.cancel(job.id, ALICE)


async def test_delete_result(jobs: Jobs) -> None:
    job = await jobs.runner.wait((await jobs.submit_text()).id)
    assert job.result_message is not None
    with pytest.raises(PermissionDenied):
        await jobs.runner.delete_result(job.id, BOB)
    await jobs.runner.delete_result(job.id, ALICE)
    assert job.result_message.id in jobs.chat.deleted
    with pytest.raises(UserError, match="no video"):
        await jobs.runner.delete_result(job.id, ALICE)

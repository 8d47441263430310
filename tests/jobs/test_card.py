"""What the status card says, how often it changes, and the admission queue on its own."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from bot.jobs import Admission, plain_failure, status_card
from bot.model import JobRecord, JobState
from bot.ports import StatusCard, format_duration, progress_bar
from tests.jobs.conftest import ROOM, Jobs


def record(state: JobState, **changes: object) -> JobRecord:
    now = datetime.now(UTC)
    job = JobRecord(id=42, owner_platform="console", owner_id="alice", owner_name="Alice",
                    place=ROOM, endpoint_id="fal-ai/ltx-video", input={"prompt": "x"},
                    state=state, estimate_credits=2, estimate_usd=0.02,
                    created_at=now - timedelta(seconds=30), updated_at=now, prompt="a fox")
    for name, value in changes.items():
        setattr(job, name, value)
    return job


def card(job: JobRecord, typical_seconds: float | None = None) -> StatusCard:
    return status_card(job, at=datetime.now(UTC), typical_seconds=typical_seconds)


def test_card_for_each_state() -> None:
    waiting = card(record(JobState.WAITING, local_position=3))
    assert waiting.title == "Job #42 · LTX Video 0.9 text-to-video"
    # Live facts are fields only; the lines are the narrative (here only the prompt).
    assert waiting.lines == ["“a fox”"]
    assert waiting.stage == "Waiting for a free slot" and waiting.local_position == 3
    assert [a.kind for a in waiting.actions] == ["cancel"]
    assert waiting.elapsed_since is not None
    assert 29 <= (datetime.now(UTC) - waiting.elapsed_since).total_seconds() <= 31

    # fal counts the requests ahead of ours (0 = next); the card counts from 1.
    queued = card(record(JobState.IN_QUEUE, queue_position=4))
    assert queued.fal_position == 5 and queued.lines == ["“a fox”"]
    assert queued.local_position is None and queued.progress is None

    started = datetime.now(UTC) - timedelta(seconds=20)
    running = card(record(JobState.RUNNING, progress=0.5, started_at=started))
    assert running.progress == 0.5 and running.eta is not None and running.stage == "Generating"
    assert 15 <= (running.eta - datetime.now(UTC)).total_seconds() <= 25
    assert running.lines == ["“a fox”"]
    # Before fal reports progress, a typical run time of the endpoint gives the ETA.
    early = card(record(JobState.RUNNING, started_at=started), typical_seconds=50)
    assert early.eta is not None and 25 <= (early.eta - datetime.now(UTC)).total_seconds() <= 31

    failed = card(record(JobState.FAILED, error_message="It broke. Your credits were refunded."))
    assert failed.final and failed.tone == "error" and failed.actions == []
    assert "It broke. Your credits were refunded." in failed.lines
    assert failed.facts() == [] and failed.stage is None and failed.elapsed_since is None

    done = card(record(JobState.DONE, settled_credits=2,
                       finished_at=datetime.now(UTC)))
    assert done.final and done.actions == [] and done.tone == "success"
    assert any(line.startswith("Done in 30s · 2 credits") for line in done.lines)

    assert card(record(JobState.DELIVERING)).actions == []


def test_words() -> None:
    assert format_duration(5) == "5s" and format_duration(125) == "2m 05s"
    assert format_duration(3720) == "1h 02m"
    assert progress_bar(0.5, width=4) == "██░░ 50%"
    assert plain_failure("request_timeout").startswith("The generation took longer")
    assert "refunded" in plain_failure(None)
    assert "some new thing" in plain_failure("some_new_thing")


async def test_progress_and_eta_reach_the_card(jobs: Jobs) -> None:
    jobs.sim.options.run_seconds = 1.0
    jobs.sim.options.steps = 10
    job = await jobs.submit_text("watch it grow")
    await jobs.runner.wait(job.id)
    running = [c for c in jobs.chat.status_cards(job.id) if c.state == "running"]
    progress = [c.progress for c in running if c.progress is not None]
    assert len(progress) >= 3
    assert progress == sorted(progress) and progress[-1] > progress[0]
    assert any(c.eta is not None for c in running)


async def test_queue_position_at_fal_is_shown(jobs: Jobs) -> None:
    jobs.sim.options.concurrency = 1
    jobs.sim.options.run_seconds = 0.5
    first = await jobs.submit_text("ahead")
    second = await jobs.submit_text("behind")
    await jobs.runner.wait(second.id)
    await jobs.runner.wait(first.id)
    queued = [c for c in jobs.chat.status_cards(second.id) if c.state == "in_queue"]
    # fal said "0 requests ahead": the card says next, #1, once.
    assert any(c.fal_position == 1 for c in queued)
    assert all(c.fal_position is None or c.fal_position >= 1 for c in queued)
    assert any("fal queue #1" in c.text() for c in queued)


async def test_edits_are_throttled_but_the_final_one_always_goes(jobs: Jobs) -> None:
    jobs.settings.jobs.edit_interval_seconds = 0.3
    jobs.sim.options.run_seconds = 1.2
    jobs.sim.options.steps = 24
    job = await jobs.submit_text("not too chatty")
    await jobs.runner.wait(job.id)
    card = await jobs.chat.wait_final(job.id)
    assert card.state == "done"
    calls = [c for c in jobs.chat.calls if c.kind in ("post", "edit") and c.job_id == job.id]
    assert calls[-1].card is not None and calls[-1].card.final
    # 24 progress steps, yet no two non-final edits closer than the interval.
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls[:-1])]
    assert all(gap >= 0.3 - 0.01 for gap in gaps), gaps
    assert len(calls) < 24


async def test_admission_hands_slots_in_order() -> None:
    moves: list[dict[int, int]] = []
    admission = Admission(1, moves.append)
    assert admission.enqueue(1) == 0
    assert admission.enqueue(2) == 1
    assert admission.enqueue(3) == 2
    assert admission.enqueue(4) == 3
    second = asyncio.create_task(admission.wait_for_slot(2))
    fourth = asyncio.create_task(admission.wait_for_slot(4))
    admission.release(3)  # job 3 gave up while waiting: the ones behind it move up
    assert moves[-1] == {2: 1, 4: 2}
    admission.release(1)
    await second
    assert moves[-1] == {4: 1}
    assert not fourth.done()
    admission.release(2)
    await fourth
    assert admission.held == 1 and admission.waiting == 0
    admission.release(2)  # releasing twice changes nothing
    assert admission.held == 1
    admission.hold(9)  # a job resumed at fal counts even beyond the limit
    assert admission.held == 2 and admission.enqueue(5) == 1



def test_fal_unreachable_and_paused_show_on_every_surface_once() -> None:
    from bot.jobs.outage import UNREACHABLE_TEXT
    from bot.pause import WAITING_TEXT
    from tests.contract.test_cards import NOW, RENDERERS

    for state, notice in ((JobState.SUBMITTED, UNREACHABLE_TEXT),
                          (JobState.IN_QUEUE, UNREACHABLE_TEXT),
                          (JobState.RUNNING, UNREACHABLE_TEXT), (JobState.WAITING, WAITING_TEXT)):
        job = record(state, created_at=NOW - timedelta(seconds=65), started_at=NOW)
        plain = status_card(job, at=NOW)
        noticed = status_card(job, at=NOW, notice=notice)
        assert plain.stage != notice and noticed.stage == notice
        assert notice not in " ".join(noticed.lines)  # a field, not narrative
        for name, render in RENDERERS.items():
            text = render(noticed)
            assert text.count(notice) == 1, (name, state, text)
    # A final card has no stage, so no notice either.
    done = status_card(record(JobState.FAILED, error_message="x"), at=NOW, notice=UNREACHABLE_TEXT)
    assert UNREACHABLE_TEXT not in RENDERERS["discord"](done)

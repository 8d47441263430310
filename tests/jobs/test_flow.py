"""A job from submit to delivered video, with inputs, admission and the card."""

from __future__ import annotations

from bot.jobs import JobRunner
from bot.model import JobRecord, JobState
from tests.jobs.conftest import ALICE, Jobs, image_request, invocation, png_input

ORDER = list(JobState)


async def test_text_job_end_to_end(jobs: Jobs) -> None:
    job = await jobs.submit_text("a red fox in the snow", seed=7)
    assert job.state is JobState.WAITING

    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE
    video = await jobs.chat.wait_video(job.id)

    # Exactly one video, real MP4 bytes, with the summary and its buttons.
    assert len(jobs.chat.videos()) == 1
    assert video.data is not None and video.data[4:8] == b"ftyp"
    assert video.card is not None
    assert [a.kind for a in video.card.actions] == ["reroll", "extend", "retake", "continue",
                                                    "delete", "report"]
    summary = "\n".join(video.card.lines)
    assert "seed 7" in summary
    assert "Cost: 2 credits" in summary
    assert "left today" in summary
    assert done.result_message == video.ref

    # Cost settled: reserve 2 credits, settle at the real price (2), nothing left open.
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]
    assert done.settled_credits == 2
    assert await jobs.store.audit() == []

    # States were written in order, each once, ending done.
    history = jobs.states.history[job.id]
    assert history[:4] == [JobState.ACCEPTED, JobState.WAITING, JobState.SUBMITTED,
                           JobState.IN_QUEUE]
    assert history[-2:] == [JobState.DELIVERING, JobState.DONE]
    assert [ORDER.index(s) for s in history] == sorted({ORDER.index(s) for s in history})

    # The status message: posted first, its final edit after the video, and nothing after it.
    status_calls = [c for c in jobs.chat.calls if c.kind in ("post", "edit") and c.job_id == job.id]
    assert status_calls[0].kind == "post"
    final = status_calls[-1]
    assert final.card is not None and final.card.final and final.card.state == "done"
    assert final.card.actions == []
    assert sum(1 for c in status_calls if c.card is not None and c.card.final) == 1
    assert final.seq > video.seq
    assert jobs.chat.calls[-1] is final

    assert jobs.sim.requests_by_kind["submit"] == 1
    assert jobs.work_leftovers() == []


async def test_image_job_uploads_its_input(jobs: Jobs) -> None:
    item = png_input(jobs.tmp_path / "in", jobs.settings)
    request = image_request(jobs.settings, "fox.png")
    job = await jobs.runner.start_job(invocation(ALICE, "the fox turns"), request, [item])

    # The rewritten input is stored before the job waits for a slot.
    waiting = await jobs.store.get_job(job.id)
    assert waiting is not None
    assert waiting.input["image_url"].startswith(jobs.sim.url + "/files/")

    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE, done.error_message
    assert jobs.sim.requests_by_kind["upload"] == 1
    assert done.fal_request_id is not None
    sent = jobs.sim.submitted[done.fal_request_id]["input"]
    assert sent["image_url"] == waiting.input["image_url"]
    assert len(jobs.chat.videos(job.id)) == 1


async def test_a_media_url_without_local_file_is_used_as_is(jobs: Jobs) -> None:
    first = await jobs.runner.wait((await jobs.submit_text("source clip")).id)
    assert first.result_url is not None
    # Like a re-roll of an image job: the fal URL is already uploaded.
    request = image_request(jobs.settings, first.result_url.replace(".mp4", ".png"))
    request.media[0] = request.media[0].__class__(kind="image", url=first.result_url)
    job = await jobs.runner.start_job(invocation(), request, [None])
    assert job.input["image_url"] == first.result_url
    await jobs.runner.wait(job.id)
    assert jobs.sim.requests_by_kind["upload"] == 0


async def test_status_card_moves_to_a_reposted_message(jobs: Jobs) -> None:
    # The adapter can no longer edit the first message (e.g. an expired interaction).
    def make_stale(job: JobRecord) -> None:
        if job.status_message is not None:
            jobs.chat.stale.add(job.status_message.id)
        jobs.states(job)

    jobs.runner.hooks.on_state = make_stale
    job = await jobs.submit_text()
    done = await jobs.runner.wait(job.id)
    await jobs.chat.wait_final(job.id)
    assert done.status_message is not None
    final = [c for c in jobs.chat.calls if c.kind == "edit" and c.job_id == job.id][-1]
    assert final.card is not None and final.card.final
    assert final.ref == done.status_message
    assert final.old_ref != final.ref


async def test_runner_without_port_for_platform_refuses(jobs: Jobs) -> None:
    other = JobRunner(jobs.settings, jobs.store, jobs.quota, jobs.fal, jobs.http)
    try:
        await other.start_job(invocation(), image_request(jobs.settings, "x"), [])
    except (RuntimeError, ValueError):
        pass
    else:
        raise AssertionError("submit without a port must refuse")

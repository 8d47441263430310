"""fal misbehaving, results that do not fit, and failures: each ends clearly and refunded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.errors import MediaError, UserError
from bot.model import JobState
from bot.ports import MessageRef, Place, StatusCard
from tests.fakes.chat import FakeChat
from tests.jobs.conftest import ALICE, Jobs, image_request, invocation, png_input


async def test_bursts_of_429_and_503_still_finish(jobs: Jobs) -> None:
    jobs.sim.fail_next(429, 3, path_contains="/fal-ai/ltx-video")
    jobs.sim.fail_next(503, 3, path_contains="/status")
    jobs.sim.fail_next(503, 2, path_contains="/requests/")
    jobs.sim.options.fail_rate = 0.25
    job = await jobs.submit_text("through the storm")
    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE, done.error_message
    assert len(jobs.chat.videos(job.id)) == 1
    assert jobs.sim.requests_by_kind["submit"] == 1
    assert await jobs.ledger(job.id) == [("reserve", 2), ("settle", 0)]


async def test_a_dropped_status_stream_still_finishes(jobs: Jobs) -> None:
    jobs.sim.options.drop_stream_rate = 1.0
    jobs.sim.options.run_seconds = 0.4
    job = await jobs.submit_text("cut the wire")
    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE, done.error_message
    assert jobs.sim.requests_by_kind["stream"] >= 1
    assert jobs.sim.requests_by_kind["status"] >= 1  # fell back to polling
    assert len(jobs.chat.videos(job.id)) == 1


async def test_a_failed_request_is_refunded_with_plain_words(jobs: Jobs) -> None:
    jobs.sim.options.error_rate = 1.0
    job = await jobs.submit_text("doomed")
    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_type == "runner_disconnected"
    assert done.error_message is not None
    assert "fal lost the machine" in done.error_message
    assert "refunded" in done.error_message
    assert await jobs.ledger(job.id) == [("reserve", 2), ("refund", -2)]
    card = await jobs.chat.wait_final(job.id)
    assert card.tone == "error" and card.actions == []
    assert done.error_message in card.lines
    assert jobs.chat.videos() == []
    assert jobs.work_leftovers() == []


async def test_fal_down_fails_and_refunds(jobs: Jobs) -> None:
    # More 503s than the client retries, for longer than `fal_unreachable_minutes`: the
    # job waits out the outage (see test_fal_outage.py), then gives up, never sent.
    jobs.settings.jobs.fal_unreachable_minutes = 0.02
    jobs.fal.max_retries = 2
    jobs.sim.fail_next(503, 10_000, path_contains="/fal-ai/ltx-video")
    job = await jobs.submit_text("nobody home")
    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_message is not None and "could not be reached" in done.error_message
    assert done.fal_request_id is None
    assert await jobs.charged(job.id) == 0


async def test_upload_failure_fails_the_job_and_refunds(jobs: Jobs) -> None:
    # fal's storage refusing the file itself (a 5xx is an outage, waited out: see
    # test_fal_outage.py).
    jobs.sim.fail_next(413, 1, path_contains="/files/upload")
    item = png_input(jobs.tmp_path / "in", jobs.settings)
    job = await jobs.runner.start_job(invocation(), image_request(jobs.settings, "fox.png"), [item])
    assert job.state is JobState.FAILED
    assert job.error_message is not None and "could not be sent to fal" in job.error_message
    assert await jobs.charged(job.id) == 0
    assert jobs.sim.requests_by_kind["submit"] == 0
    assert (await jobs.chat.wait_final(job.id)).state == "failed"


async def test_a_large_result_is_fitted_under_the_limit(jobs: Jobs) -> None:
    jobs.sim.options.scale = 0.5
    first = await jobs.runner.wait((await jobs.submit_text("big", seed=3)).id)
    original = (await jobs.chat.wait_video(first.id)).size
    assert original is not None

    jobs.chat.limit = int(original * 0.7)
    second = await jobs.runner.wait((await jobs.submit_text("big", seed=3)).id)
    assert second.state is JobState.DONE, second.error_message
    sent = await jobs.chat.wait_video(second.id)
    assert sent.size is not None and sent.size <= jobs.chat.limit
    assert sent.data is not None and sent.data[4:8] == b"ftyp"
    assert second.result_size == sent.size
    assert jobs.work_leftovers() == []


async def test_nothing_fits_so_a_poster_and_the_link_are_sent(jobs: Jobs) -> None:
    # Room for a small still, far too little for any video.
    jobs.chat.limit = 6_000
    job = await jobs.submit_text("too big for this chat")
    done = await jobs.runner.wait(job.id)
    assert done.state is JobState.DONE
    assert jobs.chat.videos() == []
    [image] = jobs.chat.images(job.id)
    assert image.data is not None and image.data[:2] == b"\xff\xd8"  # a JPEG still
    assert image.card is not None and image.card.link == done.result_url
    assert image.card.link is not None and image.card.link.startswith(jobs.sim.url)
    assert any("link" in line for line in image.card.lines)
    assert done.settled_credits == 2
    assert jobs.work_leftovers() == []


class BrokenChat(FakeChat):
    """A platform that cannot say how much it accepts: an unexpected error mid-delivery."""

    def upload_limit(self, place: Place) -> int:
        raise RuntimeError("platform exploded")


async def test_an_unexpected_error_fails_with_a_correlation_id(jobs: Jobs) -> None:
    broken = BrokenChat("console")
    runner = await jobs.switch_to(broken)
    job = await jobs.submit_text("boom", runner=runner)
    done = await runner.wait(job.id)
    assert done.state is JobState.FAILED
    assert done.error_message is not None and "error id `" in done.error_message
    assert "platform exploded" not in done.error_message
    assert await jobs.charged(job.id) == 0  # not settled before the video was in hand
    card = await broken.wait_final(job.id)
    assert done.error_message in card.lines


class NoVideoChat(FakeChat):
    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        raise ConnectionError("upload refused")


async def test_a_video_that_cannot_be_posted_leaves_the_link(jobs: Jobs) -> None:
    chat = NoVideoChat("console")
    runner = await jobs.switch_to(chat)
    job = await jobs.submit_text("paid for", runner=runner)
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE
    assert done.error_message is not None and "Download it with the link" in done.error_message
    card = await chat.wait_final(job.id)
    assert card.link == done.result_url
    assert await jobs.charged(job.id) == 2
    assert ALICE.key == done.owner_key


class RefusingChat(FakeChat):
    """Says it accepts 50 MB, then refuses the file as too large (Discord's 413 / 40005)."""

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        raise MediaError("The video is 0.1 MB; this server accepts uploads up to 0.0 MB.")


async def test_a_platform_refusing_the_size_gets_the_poster_and_link(jobs: Jobs) -> None:
    refusing = RefusingChat("console")
    runner = await jobs.switch_to(refusing)
    job = await jobs.submit_text("refused upload", runner=runner)
    done = await runner.wait(job.id)
    assert done.state is JobState.DONE and done.error_message is None
    [image] = refusing.images(job.id)
    assert image.card is not None and image.card.link == done.result_url
    assert any("accepts uploads up to" in line for line in image.card.lines)


class NotInChannelChat(FakeChat):
    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        raise UserError("I'm not in this channel yet: invite me with /invite @LTX.")


async def test_a_platform_refusal_is_the_users_message_not_an_error(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = NotInChannelChat("console")
    runner = await jobs.switch_to(refusing)
    caplog.set_level(logging.ERROR)
    with pytest.raises(UserError, match="invite me"):
        await jobs.submit_text("nowhere to post", runner=runner)
    [job] = await jobs.store.list_jobs(ALICE.key)
    assert job.state is JobState.FAILED and job.error_type == "refused_by_platform"
    assert job.error_message is not None and "invite me" in job.error_message
    assert await jobs.charged(job.id) == 0
    assert "unexpected error" not in caplog.text

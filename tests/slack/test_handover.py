"""Slack with several processes on one store (HTTP mode behind one URL): any process takes
any request, a retry that reaches another process starts nothing, and a job one process
started is finished by another once the first stops (its lease released): the card is
edited and the video lands in the right thread, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.slack_app import SlackRunner
from bot.app import App
from bot.config import Settings
from bot.model import JobState
from bot.sim import SimOptions
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.fake_api import FakeFile, FakeSlack
from tests.slack.payloads import SignedSender, app_mention, slash_command

AT_FAL = (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(queue_seconds=0.0, run_seconds=2.5, concurrency=8, scale=0.1)


@dataclass
class Process:
    app: App
    runner: SlackRunner
    sender: SignedSender

    async def stop(self) -> None:
        await self.sender.close()
        await self.runner.close()
        await self.app.stop()


@pytest.fixture
async def processes(settings: Settings, sim: Any, fake_slack: FakeSlack,
                    ) -> AsyncIterator[list[Process]]:
    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = sim.url
    settings.backend.fal_rest_url = sim.url
    settings.jobs.lease_seconds = 1.5  # the survivor looks for free jobs every 0.5 s
    slack = settings.slack
    slack.bot_token = fake_slack.bot_token  # type: ignore[assignment]
    slack.signing_secret = SIGNING_SECRET  # type: ignore[assignment]
    slack.api_url = fake_slack.api_url
    slack.mode, slack.host, slack.port = "http", "127.0.0.1", 0
    running: list[Process] = []
    for _ in range(2):
        app = App(settings.model_copy(deep=True))
        await app.start()
        runner = SlackRunner(app, app.settings, min_edit_interval=0.0)
        await runner.start()
        assert runner.adapter.url is not None
        running.append(Process(app, runner, SignedSender(runner.adapter.url, SIGNING_SECRET)))
    yield running
    for process in running:
        await process.stop()


async def wait_at_fal(app: App) -> int:
    async with asyncio.timeout(20):
        while True:
            jobs = [j for j in app.runner.driving() if j.state in AT_FAL]
            if jobs:
                return jobs[0].id
            await asyncio.sleep(0.05)


def videos(fake: FakeSlack) -> list[FakeFile]:
    return [f for f in fake.files.values() if f.completed and f.name.endswith(".mp4")]


async def test_any_process_takes_any_request_and_a_retry_elsewhere_starts_nothing(
    processes: list[Process], fake_slack: FakeSlack,
) -> None:
    a, b = processes
    envelope = app_mention("<@UBOT> a kite --seconds 1", event_id="Ev0SPREAD")
    # Slack retries on whichever process the load balancer picks.
    for process, retry in ((a, None), (b, 1), (a, 2)):
        assert (await process.sender.event(envelope, retry_num=retry)).status_code == 200
    assert (await b.sender.command(slash_command("a balloon --seconds 1"))).status_code == 200
    await fake_slack.wait_for(lambda: len(videos(fake_slack)) >= 2, limit=60)
    jobs = await a.app.store.list_jobs("slack:U0001")
    assert sorted(j.prompt for j in jobs) == ["a balloon", "a kite"]
    await asyncio.sleep(0.5)
    assert len(videos(fake_slack)) == 2


async def test_a_job_started_in_one_process_is_finished_by_the_other(
    processes: list[Process], fake_slack: FakeSlack,
) -> None:
    a, b = processes
    thread = "1700000200.000100"
    await a.sender.event(app_mention("<@UBOT> a lighthouse in the fog --seconds 2",
                                     ts="1700000201.000100", thread_ts=thread))
    job_id = await wait_at_fal(a.app)
    await a.stop()  # a clean stop releases the lease: the other process adopts the job
    processes.remove(a)
    job = await asyncio.wait_for(b.app.runner.wait(job_id), 30)
    assert job.state is JobState.DONE
    [video] = videos(fake_slack)
    assert (video.channel, video.thread_ts) == ("C0001", thread)
    card = job.status_message
    assert card is not None and card.extra.get("thread_ts") == thread
    [message] = [m for m in fake_slack.live_messages("C0001") if m.ts == card.id]
    assert message.thread_ts == thread and f"#{job_id}" in message.text + str(message.blocks)

"""A job started in one process and finished by another, fresh one (its lease released by a
clean stop, or lost with a crash): what the second needs to deliver it travels with the job
in the store (the interaction token, its expiry and the channel's upload limit in the card's
reference), so the video lands once, as the interaction's followup, at the right size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.discord_bot import DiscordRunner
from bot.app import App
from bot.config import Settings
from bot.model import JobState
from bot.sim import SimOptions
from tests.discord.conftest import dispatch
from tests.discord.fake_api import FakeDiscord
from tests.discord.payloads import CHANNEL_ID, Payloads

AT_FAL = (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)


@pytest.fixture
def sim_options() -> SimOptions:
    # Long enough to stop the first process while fal renders, short enough for a test.
    return SimOptions(queue_seconds=0.0, run_seconds=2.5, concurrency=8, scale=0.1)


@pytest.fixture
async def apps(settings: Settings, sim: Any) -> AsyncIterator[list[App]]:
    started: list[App] = []
    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = sim.url
    settings.backend.fal_rest_url = sim.url
    settings.discord.token = "handover-token"  # type: ignore[assignment]
    yield started
    for app in started:
        await app.stop()


async def start_process(apps: list[App], settings: Settings) -> tuple[App, DiscordRunner]:
    app = App(settings)
    await app.start()
    apps.append(app)
    runner = DiscordRunner(app, settings)
    await runner.login()
    return app, runner


async def wait_at_fal(app: App) -> int:
    async with asyncio.timeout(20):
        while True:
            jobs = [j for j in app.runner.driving() if j.state in AT_FAL]
            if jobs:
                return jobs[0].id
            await asyncio.sleep(0.05)


async def test_a_job_started_here_is_finished_by_a_fresh_process(
    apps: list[App], settings: Settings, fake: FakeDiscord, payloads: Payloads,
) -> None:
    settings.discord.api_url = fake.url
    # This process only knows its configured default, far below what the video needs: the
    # interaction's real limit (10 MiB) must reach it with the job.
    second = settings.model_copy(deep=True)
    second.discord.default_upload_limit_bytes = 1000
    app_a, runner_a = await start_process(apps, settings)
    payload = payloads.slash("video", {"prompt": "a lighthouse in the fog"})
    dispatch(runner_a.client, payload)
    job_id = await wait_at_fal(app_a)
    await runner_a.close()
    await app_a.stop()  # a clean stop releases the job's lease
    apps.remove(app_a)

    app_b, runner_b = await start_process(apps, second)
    try:
        job = await asyncio.wait_for(app_b.runner.wait(job_id), 30)
    finally:
        await runner_b.close()
    assert job.state is JobState.DONE, job
    uploads = [c for c in fake.calls if c.status == 200 and any(
        f.filename.endswith(".mp4") for f in c.files)]
    assert len(uploads) == 1, [c.path for c in uploads]
    # As the interaction's followup: same channel, no bot-token channel message needed.
    assert uploads[0].path == f"/webhooks/{fake.app_id}/{payload['token']}"
    message = fake.messages[int(uploads[0].response["id"])]
    assert int(message["channel_id"]) == CHANNEL_ID
    assert not [c for c in fake.calls if c.bot_auth and c.path.startswith("/channels/")]

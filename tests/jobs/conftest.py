"""Fixtures for the JobRunner tests: the real simulator, a real SQLite file, a FakeChat.

`jobs` is a started harness: a runner wired to all of them, plus helpers to
build requests and to await job states (recorded through `RunnerHooks.on_state`).
Tests change simulator behaviour through `sim.options` (read live) and build
more runners on the same database with `jobs.new_runner()` to test resuming.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot import catalog, media
from bot.config import Settings
from bot.fal import FalClient
from bot.jobs import JobRunner
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia, MediaRef, MediaSlot
from bot.ports import Invocation, Place, User
from bot.quota import Quota
from bot.sim import SimOptions, Simulator
from bot.store import SqliteStore, open_store
from tests.conftest import make_settings
from tests.fakes.chat import FakeChat

ALICE = User(platform="console", id="alice", name="Alice")
BOB = User(platform="console", id="bob", name="Bob")
ADMIN = User(platform="console", id="root", name="Root", is_admin=True)
ROOM = Place(platform="console", channel="general", workspace="local")


def text_request(settings: Settings, prompt: str = "a red fox in the snow", seed: int = 7,
                 model: str = "ltx-video") -> GenerationRequest:
    endpoint = catalog.by_name(model)
    payload = endpoint.input_model.model_validate({"prompt": prompt, "seed": seed}).model_dump(
        mode="json", exclude_none=True
    )
    estimate = catalog.estimate(endpoint, payload, settings.quota.credits_per_usd, settings.prices)
    return GenerationRequest(endpoint=endpoint, input=payload, estimate=estimate, prompt=prompt)


def image_request(settings: Settings, source: str, prompt: str = "the fox turns its head",
                  seed: int = 11) -> GenerationRequest:
    endpoint = catalog.by_name("ltx-video-i2v")
    payload = endpoint.input_model.model_validate(
        {"prompt": prompt, "seed": seed, "image_url": source}
    ).model_dump(mode="json", exclude_none=True)
    estimate = catalog.estimate(endpoint, payload, settings.quota.credits_per_usd, settings.prices)
    return GenerationRequest(
        endpoint=endpoint, input=payload, estimate=estimate, prompt=prompt,
        media=[MediaRef(kind="image", url=source)],
        slots=[MediaSlot(path=("image_url",), media_index=0)],
    )


def png_input(folder: Path, settings: Settings, size: tuple[int, int] = (768, 512)) -> LocalMedia:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fox.png"
    image = Image.new("RGB", size)
    for x in range(0, size[0], 16):
        for y in range(0, size[1], 16):
            image.putpixel((x, y), ((x * 3) % 256, (y * 5) % 256, 128))
    image.save(path)
    return LocalMedia(path=path, info=media.probe(path, settings.media), source="fox.png",
                      filename="fox.png")


def invocation(user: User = ALICE, text: str = "", place: Place = ROOM) -> Invocation:
    return Invocation(user=user, place=place, command="video", text=text)


class StateLog:
    """Every state a runner wrote, per job, with a way to await one."""

    def __init__(self) -> None:
        self.history: dict[int, list[JobState]] = {}
        self.at_fal_peak = 0
        self._at_fal: set[int] = set()
        self._changed = asyncio.Event()

    def __call__(self, job: JobRecord) -> None:
        self.history.setdefault(job.id, []).append(job.state)
        if job.state in (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING):
            self._at_fal.add(job.id)
            self.at_fal_peak = max(self.at_fal_peak, len(self._at_fal))
        else:
            self._at_fal.discard(job.id)
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    def reached(self, job_id: int, state: JobState) -> bool:
        return state in self.history.get(job_id, [])

    async def wait(self, job_id: int, state: JobState, within: float = 30.0) -> None:
        try:
            async with asyncio.timeout(within):
                while not self.reached(job_id, state):
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"job {job_id} never reached {state}: {self.history.get(job_id)}"
            ) from None


class Jobs:
    def __init__(self, settings: Settings, sim: Simulator, store: SqliteStore,
                 http: httpx.AsyncClient, tmp_path: Path) -> None:
        self.settings = settings
        self.sim = sim
        self.store = store
        self.http = http
        self.tmp_path = tmp_path
        self.quota = Quota(store, settings)
        self.fal = fal_client(http, sim)
        self.chat = FakeChat("console")
        self.states = StateLog()
        self.runners: list[JobRunner] = []
        self.runner = self.new_runner()

    def new_runner(self, *ports: Any) -> JobRunner:
        runner = JobRunner(self.settings, self.store, self.quota, self.fal, self.http)
        runner.hooks.on_state = self.states
        for port in ports or (self.chat,):
            runner.register_port(port)
        self.runners.append(runner)
        return runner

    async def switch_to(self, chat: Any) -> JobRunner:
        """A started runner that talks to `chat` instead of the default FakeChat (the first
        runner stops, so only one follows the jobs)."""
        runner = self.new_runner(chat)
        await self.runner.stop()
        await runner.start()
        return runner

    async def submit_text(self, prompt: str = "a red fox in the snow", *, user: User = ALICE,
                          seed: int = 7, runner: JobRunner | None = None) -> JobRecord:
        request = text_request(self.settings, prompt, seed)
        return await (runner or self.runner).start_job(invocation(user, prompt), request, [])

    async def ledger(self, job_id: int) -> list[tuple[str, int]]:
        return [(row["kind"], row["credits"]) for row in await self.store.ledger_rows(job_id)]

    async def charged(self, job_id: int) -> int:
        return sum(credits for _kind, credits in await self.ledger(job_id))

    def work_leftovers(self) -> list[Path]:
        root = media.temp_root(self.settings.media)
        return [p for p in root.rglob("job-*")] if root.exists() else []


def fal_client(http: httpx.AsyncClient, sim: Simulator) -> FalClient:
    # Quick retries and polls: the simulator answers in milliseconds.
    return FalClient(http, key=None, queue_url=sim.url, rest_url=sim.url, max_retries=10,
                     max_retry_seconds=20.0, backoff_base=0.005, backoff_max=0.05,
                     poll_interval=0.02, max_poll_interval=0.1, request_timeout=10.0)


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(queue_seconds=0.0, run_seconds=0.2, concurrency=8, scale=0.1, steps=4,
                      keepalive_seconds=1.0)


@pytest.fixture
def max_concurrent() -> int:
    return 4


@pytest.fixture
def settings(tmp_path: Path, sim: Simulator, max_concurrent: int) -> Settings:
    return make_settings(
        tmp_path,
        backend={"kind": "fal", "fal_queue_url": sim.url, "fal_rest_url": sim.url,
                 "max_concurrent": max_concurrent},
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_store(tmp_path / "jobs.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@pytest.fixture
async def jobs(settings: Settings, sim: Simulator, store: SqliteStore, http: httpx.AsyncClient,
               tmp_path: Path) -> AsyncIterator[Jobs]:
    harness = Jobs(settings, sim, store, http, tmp_path)
    await harness.runner.start()
    try:
        yield harness
    finally:
        for runner in harness.runners:
            await runner.stop()


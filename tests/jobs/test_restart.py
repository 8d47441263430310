"""SIGKILL a bot with jobs at every stage, start it again: each job finishes exactly once.

The simulator runs in this process, so fal's side survives the kill. The
runner runs in a subprocess (tests/jobs/runner_proc.py) that reports through
a FileChat. Before killing, the test checks the database: one job is
delivering (parked by the runner's test hook), one running at fal, two in
fal's queue, two waiting locally. A second test kills the bot while an LTX-2
job (priced per megapixel of what fal made) runs, so that settling it after the
restart really moves credits.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from bot import catalog
from bot.sim import SimOptions, Simulator
from bot.store import open_store
from tests.fakes.chat import read_calls
from tests.guard import with_loopback_guard
from tests.jobs.runner_proc import LTX2_ESTIMATE_SIZE

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], what: str, within: float = 60.0) -> T:
    """A bounded poll: the other process gives no events to await."""
    try:
        async with asyncio.timeout(within):
            while True:
                got = await check()
                if got:
                    return got
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


def read_states(db: Path) -> dict[int, tuple[str, str | None]]:
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT id, state, fal_request_id FROM jobs ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return {}  # the schema is not there yet
    return {row[0]: (row[1], row[2]) for row in rows}


def hurry(sim: Simulator, request_id: str) -> None:
    # The simulator's runner waits on this event between progress steps; setting it
    # without a cancel makes the remaining steps pass at once. The simulator has no
    # public "finish now", and a long run keeps the kill-time snapshot free of races.
    sim._jobs[request_id].cancel_signal.set()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimOptions(queue_seconds=0.0, run_seconds=0.2, concurrency=1,
                                     scale=0.1, steps=10, keepalive_seconds=1.0))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def start_proc(tmp_path: Path, sim: Simulator, name: str, *extra: str) -> Any:
    log = (tmp_path / f"{name}.log").open("wb")
    env = with_loopback_guard({**os.environ, "PYTHONPATH": str(REPO)})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.jobs.runner_proc",
        "--db", str(tmp_path / "bot.sqlite3"), "--sim", sim.url,
        "--chat", str(tmp_path / "chat.jsonl"), "--tmp", str(tmp_path / "tmp"), *extra,
        cwd=str(REPO), env=env, stdout=log, stderr=log,
    )


async def test_sigkill_and_restart_delivers_every_job_exactly_once(
    tmp_path: Path, sim: Simulator
) -> None:
    db = tmp_path / "bot.sqlite3"
    chat_file = tmp_path / "chat.jsonl"
    first = await start_proc(tmp_path, sim, "first", "--submit", "6", "--max-concurrent", "3",
                             "--pause-first-delivery")
    try:
        # The first request fal runs is quick; every later one would take a minute.
        async def first_running() -> str | None:
            return next((rid for rid in sim.submitted if sim.job_state(rid) != "IN_QUEUE"), None)

        quick = await until(first_running, "fal to start a request")
        sim.options.run_seconds = 60.0

        def snapshot_ready() -> bool:
            states = Counter(state for state, _rid in read_states(db).values())
            paused = any(c.get("paused") for c in read_calls(chat_file))
            return paused and states == Counter(
                {"delivering": 1, "running": 1, "in_queue": 2, "waiting": 2})

        async def ready() -> bool:
            return await asyncio.to_thread(snapshot_ready)

        await until(ready, "1 delivering, 1 running, 2 in fal's queue, 2 waiting")
        before = read_states(db)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL

    at_fal: dict[int, str] = {job_id: rid for job_id, (state, rid) in before.items()
                              if state in ("delivering", "running", "in_queue") and rid}
    assert len(at_fal) == 4
    assert quick in at_fal.values()
    assert sim.requests_by_kind["submit"] == 4
    delivered_before = [c for c in read_calls(chat_file) if c["call"] == "send_video"]
    assert delivered_before == []

    # fal keeps working while the bot is down; make the long request quick again.
    sim.options.run_seconds = 0.2
    sim.options.concurrency = 8
    for rid in at_fal.values():
        if sim.job_state(rid) == "IN_PROGRESS":
            hurry(sim, rid)

    second = await start_proc(tmp_path, sim, "second", "--until-done")
    try:
        await asyncio.wait_for(second.wait(), 90)
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert second.returncode == 0, (tmp_path / "second.log").read_text()[-3000:]

    calls = list(read_calls(chat_file))
    videos = Counter(c["job_id"] for c in calls if c["call"] == "send_video")
    assert videos == Counter({job_id: 1 for job_id in range(1, 7)})
    assert all(c["pid"] == second.pid for c in calls if c["call"] == "send_video")
    final_cards = Counter(c["job_id"] for c in calls if c["call"] == "edit" and c["card"]["final"])
    assert final_cards == Counter({job_id: 1 for job_id in range(1, 7)})

    # No request that had an id was sent to fal again: 4 before the kill, 2 after.
    assert sim.requests_by_kind["submit"] == 6
    after = read_states(db)
    for job_id, rid in at_fal.items():
        assert after[job_id] == ("done", rid)
    assert {state for state, _rid in after.values()} == {"done"}

    store = await open_store(db)
    try:
        for job_id in range(1, 7):
            rows = [(r["kind"], r["credits"]) for r in await store.ledger_rows(job_id)]
            assert rows == [("reserve", 2), ("settle", 0)], (job_id, rows)
            job = await store.get_job(job_id)
            assert job is not None and job.settled_credits == 2
        assert await store.audit() == []
    finally:
        await store.close()
    leftovers = list((tmp_path / "tmp").rglob("job-*"))
    assert leftovers == []


async def test_sigkill_while_an_ltx2_job_runs_settles_it_to_what_fal_made(
    tmp_path: Path, sim: Simulator
) -> None:
    db = tmp_path / "bot.sqlite3"
    chat_file = tmp_path / "chat.jsonl"
    ltx2 = catalog.by_name("ltx-2")
    credits_per_usd = 100.0  # runner_proc keeps the default
    # A portrait image: `video_size: auto` makes the nominal area in its shape.
    image = tmp_path / "portrait.png"
    Image.new("RGB", (512, 768), (40, 90, 160)).save(image)
    sim.options.run_seconds = 60.0  # stays IN_PROGRESS until hurried

    first = await start_proc(tmp_path, sim, "first", "--submit", "1", "--ltx2-image", str(image))
    try:
        async def running() -> str | None:
            state, rid = (await asyncio.to_thread(read_states, db)).get(1, (None, None))
            if state == "running" and rid and sim.job_state(rid) == "IN_PROGRESS":
                return rid
            return None

        rid = await until(running, "the LTX-2 job to run at fal")
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    assert sim.job_state(rid) == "IN_PROGRESS"
    assert [c for c in read_calls(chat_file) if c["call"] == "send_video"] == []

    estimate = catalog.estimate(ltx2, {"video_size": LTX2_ESTIMATE_SIZE}, credits_per_usd).credits
    store = await open_store(db)
    try:
        job = await store.get_job(1)
        assert job is not None and job.endpoint_id == "fal-ai/ltx-2-19b/image-to-video"
        assert job.input["video_size"] == "auto" and job.input["image_url"].startswith(sim.url)
        assert job.estimate_credits == estimate and job.settled_credits is None
        assert [(r["kind"], r["credits"]) for r in await store.ledger_rows(1)] == [
            ("reserve", estimate)]
    finally:
        await store.close()

    hurry(sim, rid)  # fal finishes while the bot is down
    second = await start_proc(tmp_path, sim, "second", "--until-done")
    try:
        await asyncio.wait_for(second.wait(), 90)
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert second.returncode == 0, (tmp_path / "second.log").read_text()[-3000:]

    calls = list(read_calls(chat_file))
    videos = [c for c in calls if c["call"] == "send_video"]
    assert [(c["job_id"], c["pid"]) for c in videos] == [(1, second.pid)]
    assert [c["job_id"] for c in calls if c["call"] == "edit" and c["card"]["final"]] == [1]
    # Neither the request nor its image went to fal again.
    assert sim.requests_by_kind["submit"] == 1
    assert sim.requests_by_kind["upload"] == 1
    assert read_states(db) == {1: ("done", rid)}

    store = await open_store(db)
    try:
        job = await store.get_job(1)
        assert job is not None and job.result is not None
        made = job.result["video"]
        width, height, frames = made["width"], made["height"], made["num_frames"]
        assert (width, height) == catalog.auto_size(512 / 768, ltx2.nominal_size)
        usd_per_mp = ltx2.price.usd_per_megapixel
        assert usd_per_mp is not None
        real_usd = math.ceil(width * height * frames / 1_000_000) * usd_per_mp
        real = catalog.usd_to_credits(real_usd, credits_per_usd)
        # The premise: the estimate, and the price of the input alone (the nominal
        # size), both differ from what was made.
        payload_only = catalog.estimate(ltx2, job.input, credits_per_usd).credits
        assert len({estimate, payload_only, real}) == 3, (estimate, payload_only, real)

        rows = [(r["kind"], r["credits"]) for r in await store.ledger_rows(1)]
        assert rows == [("reserve", estimate), ("settle", real - estimate)]
        assert job.settled_credits == real
        assert job.settled_usd == pytest.approx(real_usd)
        assert await store.audit() == []
    finally:
        await store.close()
    assert any(f"Cost: {real} credits" in line for line in videos[0]["card"]["lines"])
    assert list((tmp_path / "tmp").rglob("job-*")) == []

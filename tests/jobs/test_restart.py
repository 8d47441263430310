"""SIGKILL a bot with jobs at every stage, start it again: each job finishes exactly once.

The simulator runs in this process, so fal's side survives the kill. The
runner runs in a subprocess (tests/jobs/runner_proc.py) that reports through
a FileChat. Before killing, the test checks the database: one job is
delivering (parked by the runner's test hook), one running at fal, two in
fal's queue, two waiting locally.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.sim import SimOptions, Simulator
from bot.store import open_store
from tests.fakes.chat import read_calls
from tests.guard import with_loopback_guard

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

"""Several bot processes on one SQLite store and one simulator: each job is sent to fal
once and delivered once, a killed process's jobs are adopted by another, and quotas and
waiting stay exact (issue 11, part 1).

The runners are real processes (tests/jobs/runner_proc.py); the simulator runs in
this test, so its counters say how many requests fal got.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sim import SimOptions, Simulator
from bot.store import open_store
from tests.fakes.chat import read_calls
from tests.jobs.test_restart import hurry, read_states, start_proc, until

BOUND = 120.0  # seconds every process must be done within


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimOptions(queue_seconds=0.0, run_seconds=0.3, concurrency=8,
                                     scale=0.1, steps=5, keepalive_seconds=1.0))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def finish(procs: list[object], within: float = BOUND) -> list[int]:
    """Every process's exit code; kills (and fails) any that does not end in time."""
    async def one(proc: object) -> int:
        code: int = await proc.wait()  # type: ignore[attr-defined]
        return code

    try:
        return list(await asyncio.wait_for(asyncio.gather(*(one(p) for p in procs)), within))
    finally:
        for proc in procs:
            if proc.returncode is None:  # type: ignore[attr-defined]
                proc.kill()  # type: ignore[attr-defined]
                await proc.wait()  # type: ignore[attr-defined]


async def audit_clean(db: Path, jobs: int) -> None:
    store = await open_store(db)
    try:
        for job_id in range(1, jobs + 1):
            rows = [(r["kind"], r["credits"]) for r in await store.ledger_rows(job_id)]
            assert rows == [("reserve", 2), ("settle", 0)], (job_id, rows)
        assert await store.audit() == []
    finally:
        await store.close()


def videos(chat: Path) -> Counter[int]:
    return Counter(c["job_id"] for c in read_calls(chat) if c["call"] == "send_video")


async def test_two_bots_with_jobs_in_flight_send_each_job_once(
    tmp_path: Path, sim: Simulator
) -> None:
    procs = [await start_proc(tmp_path, sim, f"bot{i}", "--submit", "3", "--until-done",
                              "--max-concurrent", "4", "--lease-seconds", "1.5")
             for i in range(2)]
    codes = await finish(procs)
    assert codes == [0, 0], [(tmp_path / f"bot{i}.log").read_text()[-2000:] for i in range(2)]
    assert sim.requests_by_kind["submit"] == 6
    assert len(set(sim.submitted)) == 6
    assert videos(tmp_path / "chat.jsonl") == Counter({job_id: 1 for job_id in range(1, 7)})
    assert {state for state, _rid in read_states(tmp_path / "bot.sqlite3").values()} == {"done"}
    await audit_clean(tmp_path / "bot.sqlite3", 6)


async def test_a_killed_bots_jobs_are_adopted_by_the_other_and_delivered_once(
    tmp_path: Path, sim: Simulator
) -> None:
    db, chat = tmp_path / "bot.sqlite3", tmp_path / "chat.jsonl"
    sim.options.run_seconds = 60.0  # the victim's jobs stay at fal until hurried
    victim = await start_proc(tmp_path, sim, "victim", "--submit", "3", "--lease-seconds", "1.5")
    try:
        async def at_fal() -> bool:
            states = await asyncio.to_thread(read_states, db)
            return len(states) == 3 and all(rid for _state, rid in states.values())

        await until(at_fal, "the victim's 3 jobs to be at fal")
        survivor = await start_proc(tmp_path, sim, "survivor", "--submit", "1",
                                    "--until-store-empty", "--lease-seconds", "1.5")
        await until(lambda: asyncio.to_thread(lambda: len(read_states(db)) == 4),
                    "the survivor's own job")
        await asyncio.sleep(1.0)  # time enough to touch the victim's jobs if it would
        # While the victim lives, its jobs are its own: the survivor shows nothing of them.
        touched = [c for c in read_calls(chat)
                   if c["pid"] == survivor.pid and c.get("job_id") in (1, 2, 3)]
        assert touched == []
    finally:
        if victim.returncode is None:
            victim.send_signal(signal.SIGKILL)
        await victim.wait()
    assert victim.returncode == -signal.SIGKILL
    sim.options.run_seconds = 0.3
    for rid in list(sim.submitted):
        if sim.job_state(rid) == "IN_PROGRESS":
            hurry(sim, rid)
    codes = await finish([survivor])
    assert codes == [0], (tmp_path / "survivor.log").read_text()[-3000:]
    assert sim.requests_by_kind["submit"] == 4
    calls = list(read_calls(chat))
    assert videos(chat) == Counter({job_id: 1 for job_id in range(1, 5)})
    assert all(c["pid"] == survivor.pid for c in calls if c["call"] == "send_video")
    assert "job 1: adopted" in (tmp_path / "survivor.log").read_text()
    await audit_clean(db, 4)


async def test_twenty_bots_one_user_five_jobs_worth_of_credits(
    tmp_path: Path, sim: Simulator
) -> None:
    # Each job is reserved at 2 credits: the day allows exactly five.
    procs = await asyncio.gather(*(
        start_proc(tmp_path, sim, f"bot{i}", "--submit", "1", "--until-done",
                   "--daily-credits", "10", "--lease-seconds", "2")
        for i in range(20)))
    codes = await finish(list(procs), within=180.0)
    assert codes == [0] * 20, (tmp_path / "bot0.log").read_text()[-2000:]
    assert sim.requests_by_kind["submit"] == 5
    refused = [c for c in read_calls(tmp_path / "chat.jsonl") if c.get("refused")]
    assert len(refused) == 15
    assert videos(tmp_path / "chat.jsonl") == Counter({job_id: 1 for job_id in range(1, 6)})
    await audit_clean(tmp_path / "bot.sqlite3", 5)

"""Exactness across processes: admissions from four processes at once never overshoot
a limit, on either backend (each process has its own connections, as separate bots do).

On PostgreSQL every kind of limit is its own case, since each takes other row locks;
on SQLite one case is enough: every admission takes the same lock, the file's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.store import open_store
from tests.guard import with_loopback_guard

from .scenarios import CASES

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4
EACH = 50  # 4 x 50 = 200 admissions; every case's limit admits 10


async def start(index: int, log: Path) -> Any:
    env = with_loopback_guard({**os.environ, "PYTHONPATH": str(REPO)})
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.store.admit_proc", "--index", str(index), "--count", str(EACH),
        cwd=str(REPO), env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
    )


async def tell_all(procs: list[Any], line: str) -> None:
    for proc in procs:
        proc.stdin.write(f"{line}\n".encode())
        await proc.stdin.drain()


async def answers(procs: list[Any]) -> list[str]:
    async def one(proc: Any) -> str:
        line: bytes = await asyncio.wait_for(proc.stdout.readline(), timeout=90)
        return line.decode().strip()

    return await asyncio.gather(*(one(p) for p in procs))


async def test_200_admissions_from_4_processes_admit_exactly_10(
    backend: str, new_where: Callable[[str], str | Path], tmp_path: Path
) -> None:
    procs = [await start(i, tmp_path / f"proc{i}.log") for i in range(PROCESSES)]
    try:
        for case in sorted(CASES) if backend == "postgresql" else ["global"]:
            where = new_where(case)
            await tell_all(procs, f"{case} {where}")
            assert await answers(procs) == ["ready"] * PROCESSES, case
            await tell_all(procs, "go")
            admitted = [int(a) for a in await answers(procs)]
            assert sum(admitted) == 10, (case, admitted)
            store = await open_store(where)
            try:
                assert len(await store.unfinished_jobs()) == 10
                assert await store.audit() == []
            finally:
                await store.close()
        await tell_all(procs, "quit")
        assert [await asyncio.wait_for(p.wait(), timeout=30) for p in procs] == [0] * PROCESSES
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

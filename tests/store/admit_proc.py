"""A process that makes admissions against a shared store, for tests/store/test_processes.py.

    python -m tests.store.admit_proc --index I --count N

It reads commands on stdin, one a line, and answers on stdout:

- `CASE WHERE`: open the store at WHERE (a SQLite path or a postgresql:// URL) with
  the limits of CASE (`scenarios.CASES`), answer `ready`;
- `go`: make N admissions at once, answer how many were admitted, close the store;
- `quit`: end.

The test says `go` to every process only when all are ready, so the admissions of
all processes overlap.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import QuotaExceeded
from bot.ports import User
from bot.quota import Quota
from bot.store import open_store
from tests.store.scenarios import ALICE, CASES, GUILD, ManualClock, make_request, make_settings

NOW = datetime(2026, 4, 29, 19, 0, tzinfo=UTC)


async def admit_all(quota: Quota, users: list[User]) -> int:
    async def one(user: User) -> bool:
        try:
            await quota.admit(user, GUILD, make_request(10))
        except QuotaExceeded:
            return False
        return True

    return sum(await asyncio.gather(*(one(u) for u in users)))


async def one_case(case: str, where: str, index: int, count: int, lines: asyncio.Queue[str]) -> None:
    limits, single = CASES[case]
    clock = ManualClock(NOW)
    users = ([ALICE] * count if single else
             [User("discord", str(5000 + index * count + i), f"user{i}") for i in range(count)])
    store = await open_store(where, clock=clock)
    try:
        quota = Quota(store, make_settings(Path("unused.sqlite3"), **limits), clock=clock)
        print("ready", flush=True)
        assert await lines.get() == "go"
        print(await admit_all(quota, users), flush=True)
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    lines: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: lines.put_nowait(sys.stdin.readline().strip()))
    while (line := await lines.get()) != "quit":
        case, where = line.split(" ", 1)
        await one_case(case, where, args.index, args.count, lines)


if __name__ == "__main__":
    asyncio.run(main())

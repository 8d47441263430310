"""Quota throughput: admit (reserve) + settle with many concurrent tasks on a real SQLite file.

Run: .venv/bin/python bench/quota.py [--tasks 50] [--seconds 3] [--path FILE]
Prints one JSON object. `ops` counts admits and settles (two per job).
"""

# ruff: noqa: E402  (sys.path is fixed before the imports on purpose)
from __future__ import annotations

import os
import sys

# Run as a script, Python puts bench/ first on sys.path, where bench/queue.py would
# shadow the standard library's queue (which asyncio needs); use the repo root instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot import catalog
from bot.config import Settings
from bot.model import GenerationRequest, JobState
from bot.ports import Place, User
from bot.quota import Quota
from bot.store import open_store


def _request() -> GenerationRequest:
    endpoint = catalog.by_name("ltx-2")
    est = catalog.estimate(endpoint, {}, 100.0)
    return GenerationRequest(endpoint=endpoint, input={"prompt": "bench"}, estimate=est, prompt="bench")


async def _bench(path: Path, tasks: int, seconds: float) -> dict[str, Any]:
    # Limits high enough that every admission passes: this measures the machinery.
    settings = Settings.model_validate({
        "database": {"path": str(path)},
        "quota": {"daily_credits": 10**9, "monthly_credits": 10**9, "max_concurrent_jobs": 1000,
                  "cooldown_seconds": 0, "workspace_monthly_credits": 10**9,
                  "global_daily_credits": 10**9},
    })
    store = await open_store(path)
    quota = Quota(store, settings)
    request = _request()
    latencies: list[float] = []
    counts = {"admits": 0, "settles": 0}
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        user = User("discord", str(n), f"bench{n}")
        place = Place("discord", "c", f"g{n % 5}")
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            job = await quota.admit(user, place, request)
            latencies.append(time.perf_counter() - t0)
            counts["admits"] += 1
            # The runner marks the job finished before settling; counted as neither op.
            await store.update_job(job.id, state=JobState.DONE)
            t0 = time.perf_counter()
            await quota.settle(job.id, request.estimate.usd * 0.9)
            latencies.append(time.perf_counter() - t0)
            counts["settles"] += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(n) for n in range(tasks)))
        elapsed = time.perf_counter() - start
        problems = await store.audit()
    finally:
        await store.close()
    ops = counts["admits"] + counts["settles"]
    latencies.sort()
    return {
        "bench": "quota",
        "tasks": tasks,
        "seconds": round(elapsed, 3),
        "admits": counts["admits"],
        "settles": counts["settles"],
        "ops": ops,
        "ops_per_s": round(ops / elapsed, 1),
        "jobs_per_s": round(counts["settles"] / elapsed, 1),
        "op_latency_ms_p50": round(statistics.median(latencies) * 1000, 3) if latencies else None,
        "op_latency_ms_p99": (round(latencies[int(len(latencies) * 0.99)] * 1000, 3)
                              if latencies else None),
        "goal_ops_per_s": 2000,
        "ledger_consistent": problems == [],
    }


def run_quota_bench(path: str | Path | None = None, tasks: int = 50, seconds: float = 3.0) -> dict[str, Any]:
    """Run the benchmark on `path` (a fresh temporary file when None) and return its numbers.
    Synchronous; called from inside a running event loop (bench/jobs.py) it runs on its
    own loop in a helper thread, blocking the caller for `seconds`."""
    def go() -> dict[str, Any]:
        if path is not None:
            return asyncio.run(_bench(Path(path), tasks, seconds))
        with tempfile.TemporaryDirectory() as directory:
            return asyncio.run(_bench(Path(directory) / "quota-bench.sqlite3", tasks, seconds))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(go).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--path", default=None, help="SQLite file (default: a temporary one)")
    args = parser.parse_args(argv)
    print(json.dumps(run_quota_bench(args.path, args.tasks, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

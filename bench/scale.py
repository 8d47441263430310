"""Scaling benchmark: quota operations and jobs on PostgreSQL with 1, 2 and 4 bot
processes, beside SQLite with one, all measured in the same run; then 1,000 jobs
over 2 processes on PostgreSQL, each delivered exactly once.

It starts its own throwaway PostgreSQL server (tests/pg.py: Debian's binaries in a
temporary directory, fsync off) and a fal simulator in this process; every bot
process is a real process (this file, `--worker`). Prints ONE JSON object:

    {"quota": {"sqlite_1": {...}, "postgresql_1": ..., "postgresql_2": ...,
               "postgresql_4": ..., "postgresql_4_global_limit": ...},
     "jobs": {"sqlite_1": {...}, "postgresql_1": ..., "postgresql_2": ..., "postgresql_4": ...},
     "thousand": {"jobs", "processes", "delivered_once", "duplicate_submissions",
                  "added_latency_ms": {"p50", "p99", "max"},
                  "added_latency_stages_ms": {"detected", "result_recorded", "downloaded",
                                              "handed_to_port"}, ...},
     "thousand_steady": {...the same, the jobs arriving at --steady-rate a second},
     "goals": {...each goal, its figure and whether it was met}}

Quota: each process runs `--tasks` tasks admitting (reserve) and settling jobs of
their own users for `--seconds`; `ops_per_s` counts both, summed over processes.
With no workspace or global limit (the default configuration) except in
`postgresql_4_global_limit`, where every admission queues on the day's global row.
Jobs: `--jobs` jobs split over the processes, submitted at once, through the
JobRunner to the simulator and delivered to a port that only counts.
Added latency: from the simulator finishing a job to the port being handed its video;
its stages say where a job waited (fal done -> the bot knows -> result fetched and
recorded -> video downloaded -> fitted, settled, claimed, sent).

`thousand` sends all 1,000 jobs at once: with fal finishing each 0.5 s after it starts
(400 at a time), results come far faster than two processes on two cores deliver
them (about 25 a second here), so its added latency is the length of that queue
divided by the throughput (Little's law), not a delay the bot adds to a job: it
measures exactly-once delivery and throughput under a burst. `thousand_steady` sends
the same 1,000 at `--steady-rate` a second, below that throughput: its added latency
is the latency goal's figure.

    .venv/bin/python bench/scale.py [--seconds 3] [--tasks 16] [--jobs 120] [--thousand 1000]
        [--steady-rate 10] [--parts quota,jobs,thousand,steady]
    .venv/bin/python bench/scale.py --parts quota --quota-cases sqlite_1,postgresql_4 --quota-rounds 3

`--quota-rounds N` runs the quota cases N times, interleaved (each on a fresh
database), and reports each case's median round with every round's figure beside
it, plus PostgreSQL 4 / SQLite 1 round by round: on a shared machine that ratio,
measured seconds apart, is the figure to compare.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/queue.py
# would shadow the standard library's `queue`: use the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

from bench.common import BenchPort, latency_ms  # noqa: E402
from bot import catalog  # noqa: E402
from bot.app import http_client_for  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.fal import FalClient  # noqa: E402
from bot.jobs import JobRunner  # noqa: E402
from bot.model import GenerationRequest, JobState  # noqa: E402
from bot.ports import Invocation, Place, User  # noqa: E402
from bot.quota import Quota  # noqa: E402
from bot.sim import SimOptions, Simulator  # noqa: E402
from bot.store import open_store  # noqa: E402
from tests.pg import PgServer  # noqa: E402

# Tiny renders (as bench/jobs.py): the benchmark measures the bot, not the encoder.
ENDPOINT_KEY = "ltx-13b"
PAYLOAD: dict[str, Any] = {"prompt": "bench", "seed": 5, "number_of_frames": 9,
                           "frame_rate": 8, "resolution": "480p"}
ROOM = Place(platform="console", channel="bench", workspace="local")


# ---------------------------------------------------------------- what every worker shares


def _settings(where: str, *, global_limit: bool = False, sim: str = "") -> Settings:
    key = "url" if where.startswith("postgresql://") else "path"
    return Settings.model_validate({
        "database": {key: where, "pool_size": 8},
        "media": {"allow_hosts": ["127.0.0.1"], "tmp_dir": tempfile.gettempdir()},
        "jobs": {"edit_interval_seconds": 5.0, "lease_seconds": 30.0},
        "quota": {"daily_credits": 10**9, "monthly_credits": 10**9, "max_concurrent_jobs": 10**6,
                  "cooldown_seconds": 0,
                  "global_daily_credits": 10**12 if global_limit else 0},
        "backend": {"kind": "fal", "fal_queue_url": sim or "http://127.0.0.1:9",
                    "fal_rest_url": sim or "http://127.0.0.1:9", "max_concurrent": 400},
    })


def _request(settings: Settings) -> GenerationRequest:
    endpoint = catalog.by_name(ENDPOINT_KEY)
    payload = endpoint.input_model.model_validate(PAYLOAD).model_dump(mode="json",
                                                                      exclude_none=True)
    estimate = catalog.estimate(endpoint, payload, settings.quota.credits_per_usd)
    return GenerationRequest(endpoint=endpoint, input=payload, estimate=estimate, prompt="bench")


async def _ready_set_go() -> float:
    """Tell the conductor this worker is ready; wait until it says go (all are ready)."""
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    return time.time()


# ---------------------------------------------------------------- quota worker


async def quota_worker(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args.db, global_limit=args.global_limit)
    store = await open_store(settings.database)
    quota = Quota(store, settings)
    request = _request(settings)
    counts = {"ops": 0}
    latencies: list[float] = []
    deadline = await _ready_set_go() + args.seconds

    async def task(n: int) -> None:
        user = User("console", f"{args.tag}-{n}", f"bench {n}")
        while time.time() < deadline:
            t0 = time.perf_counter()
            job = await quota.admit(user, ROOM, request)
            await store.update_job(job.id, state=JobState.DONE)  # neither op: as the runner does
            t1 = time.perf_counter()
            await quota.settle(job.id, request.estimate.usd * 0.9)
            latencies.append(time.perf_counter() - t1)
            latencies.append(t1 - t0)
            counts["ops"] += 2

    try:
        await asyncio.gather(*(task(n) for n in range(args.tasks)))
    finally:
        await store.close()
    return {"ops": counts["ops"], "op_ms": latency_ms([x * 1000 for x in latencies])}


# ---------------------------------------------------------------- jobs worker


async def jobs_worker(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args.db, sim=args.sim)
    store = await open_store(settings.database)
    port = BenchPort()
    request = _request(settings)
    marks: dict[str, dict[int, float]] = {}
    # The client `ltx-bot run` uses (pools sized for every job at fal, in shards): a
    # plain client's 200 connections are taken by the jobs' status streams, and result
    # fetches and downloads then queue for a connection.
    async with http_client_for(settings) as http:
        fal = FalClient(http, key=None, queue_url=args.sim, rest_url=args.sim,
                        backoff_base=0.005, backoff_max=0.05, poll_interval=0.02,
                        max_poll_interval=0.05, request_timeout=30.0)
        runner = JobRunner(settings, store, Quota(store, settings), fal, http)
        runner.register_port(port)
        runner.hooks.on_mark = lambda job_id, mark, at: marks.setdefault(mark, {}).__setitem__(
            job_id, at)
        await runner.start()
        await _ready_set_go()
        started = time.perf_counter()

        async def one(n: int) -> None:
            user = User("console", f"{args.tag}-{n}", f"bench {n}")
            await runner.start_job(Invocation(user=user, place=ROOM, command="video",
                                              text="bench"), request, [])

        async def at_rate(n: int) -> None:
            # All at once (a burst), or spread at `--rate` jobs a second over all processes.
            if args.rate:
                await asyncio.sleep(max(0.0, started + n * args.processes / args.rate
                                        - time.perf_counter()))
            await one(n)

        await asyncio.gather(*(at_rate(n) for n in range(args.jobs)))
        # Until no job of the store is unfinished: a job whose lease another process
        # took over (or whose process lost it) is finished by whoever holds it then.
        while await store.unfinished_jobs():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        while mine := [job for job in runner.driving() if not job.state.final]:
            await asyncio.gather(*(runner.wait(job.id) for job in mine))
        ended = time.perf_counter()
        await runner.stop()
    await store.close()
    return {"started": started, "ended": ended, "sent": port.sent, "marks": marks}


# ---------------------------------------------------------------- the conductor


async def _workers(kind: str, db: str, count: int, extra: list[str]) -> list[dict[str, Any]]:
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--worker", kind, "--db", db, "--tag", f"w{i}", *extra,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE) for i in range(count)]
    for proc in procs:  # each has imported, connected and migrated: start them together
        assert proc.stdout is not None
        await proc.stdout.readline()
    outputs = await asyncio.gather(*(p.communicate(b"go\n") for p in procs))
    for proc in procs:
        if proc.returncode != 0:
            raise RuntimeError(f"a {kind} worker failed ({proc.returncode})")
    return [json.loads(out.splitlines()[-1]) for out, _err in outputs]


async def bench_quota(db: str, processes: int, args: argparse.Namespace,
                      global_limit: bool = False) -> dict[str, Any]:
    extra = ["--seconds", str(args.seconds), "--tasks", str(args.tasks)]
    if global_limit:
        extra.append("--global-limit")
    results = await _workers("quota", db, processes, extra)
    ops = sum(r["ops"] for r in results)
    return {"processes": processes, "tasks_per_process": args.tasks, "ops": ops,
            "ops_per_s": round(ops / args.seconds, 1),
            "op_ms_p99_worst_process": max(r["op_ms"]["p99"] or 0 for r in results)}


async def bench_jobs(db: str, processes: int, jobs: int, sim: Simulator,
                     rate: float = 0.0) -> dict[str, Any]:
    submits_before = sim.requests_by_kind["submit"]
    results = await _workers("jobs", db, processes,
                             ["--sim", sim.url, "--jobs", str(jobs // processes),
                              "--rate", str(rate), "--processes", str(processes)])
    sent: Counter[str] = Counter()
    arrivals: dict[str, float] = {}
    marks: dict[str, dict[str, float]] = {}
    for result in results:
        for job_id, times in result["sent"].items():
            sent[job_id] += len(times)
            arrivals[job_id] = min(times[0], arrivals.get(job_id, times[0]))
        for mark, at in result["marks"].items():
            for job_id, when in at.items():  # a job adopted mid-way: its latest mark
                marks.setdefault(mark, {})[job_id] = max(when, marks.get(mark, {}).get(job_id, when))
    rids = await asyncio.to_thread(_request_ids, db)
    done = {j: sim.completed_at[rids[int(j)]] for j in arrivals if rids.get(int(j)) in sim.completed_at}
    added = [(arrivals[j] - at) * 1000 for j, at in done.items()]
    total = jobs // processes * processes
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {
        "processes": processes, "jobs": total, "rate_per_s": rate or "all at once",
        "wall_seconds": round(wall, 2),
        "jobs_per_s": round(total / wall, 1),
        "delivered_once": sum(1 for c in sent.values() if c == 1),
        "delivered_twice_or_more": sum(1 for c in sent.values() if c > 1),
        "fal_submissions": sim.requests_by_kind["submit"] - submits_before,
        # Every job is sent to fal once: any submission beyond one per job is a duplicate.
        "duplicate_submissions": sim.requests_by_kind["submit"] - submits_before - total,
        "added_latency_ms": latency_ms(added),
        "added_latency_stages_ms": _stages(done, marks, arrivals),
    }


def _stages(done: dict[str, float], marks: dict[str, dict[str, float]],
            arrivals: dict[str, float]) -> dict[str, Any]:
    """Where the added latency goes, per job: fal done -> the bot knows (`completed`) ->
    result fetched and recorded (`download_start`) -> video downloaded (`download_end`)
    -> fitted, settled, claimed and handed to the port."""
    steps = [("detected", "completed"), ("result_recorded", "download_start"),
             ("downloaded", "download_end")]
    out: dict[str, Any] = {}
    for job_id, fal_done in done.items():
        previous = fal_done
        for name, mark in steps:
            at = marks.get(mark, {}).get(job_id)
            if at is None:
                break
            out.setdefault(name, []).append((at - previous) * 1000)
            previous = at
        else:
            out.setdefault("handed_to_port", []).append((arrivals[job_id] - previous) * 1000)
    return {name: latency_ms(values) for name, values in out.items()}


def _request_ids(db: str) -> dict[int, str]:
    """job id -> fal request id, read from the store behind the workers' backs."""
    sql = "SELECT id, fal_request_id FROM jobs WHERE fal_request_id IS NOT NULL"
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as conn:
            return dict(conn.execute(sql).fetchall())  # type: ignore[arg-type]
    import sqlite3

    with sqlite3.connect(db) as conn:
        return dict(conn.execute(sql).fetchall())


def _fresh_pg(server: PgServer, names: itertools.count[int]) -> str:
    name = f"bench_{next(names)}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return server.url(name)


async def conduct(args: argparse.Namespace) -> dict[str, Any]:
    server = await asyncio.to_thread(PgServer.start)
    names = itertools.count(1)
    sim = Simulator(SimOptions(queue_seconds=0.0, run_seconds=args.run_seconds,
                               concurrency=400, scale=0.05, steps=2, keepalive_seconds=5.0))
    await sim.start()
    out: dict[str, Any] = {"quota": {}, "jobs": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = str(Path(tmp) / "bench.sqlite3")
            if "quota" in args.parts:
                await _quota_part(out, sqlite, server, names, args)
            if "jobs" in args.parts:
                await _jobs_part(out, tmp, server, names, sim, args)
            if "thousand" in args.parts:
                out["thousand"] = await bench_jobs(_fresh_pg(server, names), 2, args.thousand, sim)
            if "steady" in args.parts:
                out["thousand_steady"] = await bench_jobs(
                    _fresh_pg(server, names), 2, args.thousand, sim, args.steady_rate)
    finally:
        await sim.stop()
        await asyncio.to_thread(server.stop)
    if all(part in args.parts for part in ("quota", "jobs", "thousand")):
        out["goals"] = _goals(out)
    out["config"] = {"seconds": args.seconds, "tasks": args.tasks, "jobs": args.jobs,
                     "sim_run_seconds": args.run_seconds, "cores": os.cpu_count(),
                     "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    return out


async def _quota_part(out: dict[str, Any], sqlite: str, server: PgServer,
              names: itertools.count[int], args: argparse.Namespace) -> None:
    cases = args.quota_cases.split(",")
    for _round in range(args.quota_rounds):
        for case in cases:
            if case not in QUOTA_CASES:
                raise SystemExit(f"unknown quota case {case!r}: one of {', '.join(QUOTA_CASES)}")
            backend, processes, global_limit = QUOTA_CASES[case]
            # Every run on a fresh database, SQLite's too (a new file each time).
            db = f"{sqlite}.{next(names)}" if backend == "sqlite" else _fresh_pg(server, names)
            result = await bench_quota(db, processes, args, global_limit=global_limit)
            out["quota"].setdefault(case, []).append(result)
            _progress(out)
    # One figure per case: the median round (rounds interleave the cases, so a burst of
    # load from elsewhere on the machine hits them alike); every round is kept too.
    for case, rounds in list(out["quota"].items()):
        best = sorted(rounds, key=lambda r: r["ops_per_s"])[len(rounds) // 2]
        out["quota"][case] = {**best, "rounds_ops_per_s": [r["ops_per_s"] for r in rounds]}
    if {"sqlite_1", "postgresql_4"} <= set(cases):
        # The goal's ratio round by round: both figures of a round were measured a few
        # seconds apart, so this is the comparison least skewed by the machine's load.
        out["quota"]["postgresql_4_over_sqlite_1_by_round"] = [
            round(pg / lite, 2) for pg, lite in zip(out["quota"]["postgresql_4"]["rounds_ops_per_s"],
                                                    out["quota"]["sqlite_1"]["rounds_ops_per_s"], strict=True)]


async def _jobs_part(out: dict[str, Any], tmp: str, server: PgServer, names: itertools.count[int],
             sim: Simulator, args: argparse.Namespace) -> None:
    out["jobs"]["sqlite_1"] = await bench_jobs(str(Path(tmp) / "jobs.sqlite3"), 1,
                                               args.jobs, sim)
    for n in (1, 2, 4):
        out["jobs"][f"postgresql_{n}"] = await bench_jobs(_fresh_pg(server, names), n,
                                                          args.jobs, sim)


# name -> (backend, processes, global limit)
QUOTA_CASES: dict[str, tuple[str, int, bool]] = {
    "sqlite_1": ("sqlite", 1, False), "postgresql_1": ("postgresql", 1, False),
    "postgresql_2": ("postgresql", 2, False), "postgresql_4": ("postgresql", 4, False),
    "postgresql_4_global_limit": ("postgresql", 4, True),
}


def _progress(out: dict[str, Any]) -> None:
    print(json.dumps(out), file=sys.stderr, flush=True)  # the figures so far, while it runs


def _goals(out: dict[str, Any]) -> dict[str, Any]:
    thousand = out["thousand"]
    pg4, sqlite1 = out["quota"]["postgresql_4"]["ops_per_s"], out["quota"]["sqlite_1"]["ops_per_s"]
    # The bot's delay, measured where the jobs come no faster than the machine delivers.
    latency_run = "thousand_steady" if "thousand_steady" in out else "thousand"
    p99 = out[latency_run]["added_latency_ms"]["p99"]
    return {
        "duplicate_submissions": {"goal": 0, "got": thousand["duplicate_submissions"],
                                  "met": thousand["duplicate_submissions"] == 0},
        "all_delivered_once": {"goal": thousand["jobs"], "got": thousand["delivered_once"],
                               "met": thousand["delivered_once"] == thousand["jobs"]
                               and thousand["delivered_twice_or_more"] == 0},
        "added_latency_p99_ms": {"goal": "< 100", "got": p99, "run": latency_run,
                                 "met": p99 is not None and p99 < 100},
        "quota_ops_per_s_4_processes_vs_sqlite_1": {
            "goal": f">= {sqlite1}", "got": pg4, "met": pg4 >= sqlite1},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--thousand", type=int, default=1000)
    parser.add_argument("--steady-rate", type=float, default=10.0,
                        help="thousand_steady: jobs a second over both processes")
    parser.add_argument("--parts", default="quota,jobs,thousand,steady",
                        help="which of quota, jobs, thousand, steady (comma-separated)")
    parser.add_argument("--quota-cases", default=",".join(QUOTA_CASES),
                        help="which quota cases, in order (comma-separated)")
    parser.add_argument("--quota-rounds", type=int, default=1,
                        help="run the quota cases this many times, interleaved; report the median")
    parser.add_argument("--run-seconds", type=float, default=0.5, help="each job's time at fal")
    # A worker process (started by the conductor above).
    parser.add_argument("--worker", choices=("quota", "jobs"))
    parser.add_argument("--db", default="")
    parser.add_argument("--tag", default="w")
    parser.add_argument("--sim", default="")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--global-limit", action="store_true")
    args = parser.parse_args(argv)
    if args.worker == "quota":
        result = asyncio.run(quota_worker(args))
    elif args.worker == "jobs":
        result = asyncio.run(jobs_worker(args))
    else:
        result = asyncio.run(conduct(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

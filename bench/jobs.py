"""Jobs benchmark: N concurrent jobs end to end through the JobRunner, plus the quota bench.

The simulator runs in a subprocess, so the memory and CPU measured here are
the bot's alone: the runner, its SQLite store (a real file), the fal client
and a chat port that keeps no file bytes. Commands arrive at `--rate` per
second and each job runs `--run-seconds` at fal, so with the defaults all
1,000 are in flight at once. Prints ONE JSON object:

    {"quota": {...from bench/quota.py...},
     "jobs": {"count", "delivered", "failed", "peak_in_flight", "wall_seconds",
              "peak_rss_mb", "cpu_seconds_per_job", "fal_requests_per_job",
              "command_to_fal_ms": {"p50", "p99", "max"},     # Bot.handle called -> fal submit sent
              "done_to_port_ms": {...},                        # sim completed_at -> send_video, minus download
              "done_to_port_with_download_ms": {...}, "download_ms": {...},
              "lease_renewal_ms": {...},                       # one heartbeat renewal, all jobs held
              "config": {...}}}

    .venv/bin/python bench/jobs.py [--jobs 1000] [--rate 25] [--run-seconds 45]

perf_counter() is CLOCK_MONOTONIC on Linux, shared by all processes, so the
simulator's `completed_at` compares directly with the runner's marks.
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
import contextlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.common import BenchPort, latency_ms  # noqa: E402
from bot.app import http_client_for  # noqa: E402
from bot.commands import Bot  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.fal import FalClient  # noqa: E402
from bot.jobs import JobRunner  # noqa: E402
from bot.model import JobState  # noqa: E402
from bot.ports import Invocation, Place, User  # noqa: E402
from bot.quota import Quota  # noqa: E402
from bot.sim import SimOptions, Simulator  # noqa: E402
from bot.store import open_store  # noqa: E402

# Tiny renders: the benchmark measures the bot, not the encoder.
ENDPOINT_KEY = "ltx-13b"
PAYLOAD: dict[str, Any] = {"number_of_frames": 9, "frame_rate": 8, "resolution": "480p"}


# ---------------------------------------------------------------- the simulator process


async def _serve_sim(args: argparse.Namespace) -> None:
    sim = Simulator(SimOptions(queue_seconds=0.0, run_seconds=args.run_seconds,
                               concurrency=args.sim_concurrency, scale=0.05, steps=5,
                               keepalive_seconds=5.0))
    url = await sim.start()

    async def completed(_request: web.Request) -> web.Response:
        return web.json_response(sim.completed_at)

    side = web.Application()
    side.router.add_get("/completed", completed)
    side_runner = web.AppRunner(side, access_log=None)
    await side_runner.setup()
    site = web.TCPSite(side_runner, "127.0.0.1", 0)
    await site.start()
    host, port = side_runner.addresses[0][:2]
    print(json.dumps({"url": url, "side": f"http://{host}:{port}"}), flush=True)
    # Until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await side_runner.cleanup()
    await sim.stop()


# ---------------------------------------------------------------- http


class SplitTransport(httpx.AsyncBaseTransport):
    """Status streams in one connection pool, every other request in another.

    httpcore walks every pooled connection on each request and each release, so
    with a thousand long-lived streams in the same pool each short call (submit,
    result, download) costs O(streams). Separate pools keep short calls cheap.
    """

    def __init__(self, streams: int) -> None:
        self.streams = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=streams + 50, max_keepalive_connections=0))
        self.calls = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self.streams if request.url.path.endswith("/status/stream") else self.calls
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        await self.streams.aclose()
        await self.calls.aclose()


# ---------------------------------------------------------------- the run


def _command_text(index: int) -> str:
    """The chat message for job `index`: the bench endpoint and its small payload as flags."""
    return (f"benchmark job {index} --model {ENDPOINT_KEY} --frames {PAYLOAD['number_of_frames']} "
            f"--fps {PAYLOAD['frame_rate']} --resolution {PAYLOAD['resolution']} --seed {index}")


async def run_jobs(args: argparse.Namespace) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-sim", "--run-seconds", str(args.run_seconds),
        "--sim-concurrency", str(args.sim_concurrency),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = await proc.stdout.readline()
    where = json.loads(line)
    try:
        with tempfile.TemporaryDirectory(prefix="ltx-bench-jobs-") as tmp:
            return await _run(args, where["url"], where["side"], Path(tmp))
    finally:
        proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 60)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _run(args: argparse.Namespace, sim_url: str, side_url: str, tmp: Path) -> dict[str, Any]:
    n = args.jobs
    settings = Settings.model_validate({
        "database": {"path": str(tmp / "bench.sqlite3")},
        "media": {"allow_hosts": ["127.0.0.1"], "tmp_dir": str(tmp / "tmp")},
        "jobs": {"edit_interval_seconds": args.edit_interval},
        "quota": {"cooldown_seconds": 0, "max_concurrent_jobs": n, "daily_credits": 10_000_000,
                  "monthly_credits": 100_000_000},
        "backend": {"kind": "fal", "fal_queue_url": sim_url, "fal_rest_url": sim_url,
                    "max_concurrent": args.max_concurrent},
    })
    store = await open_store(settings.database.path)
    client: httpx.AsyncClient
    if args.transport == "bot":
        # What `ltx-bot run` uses: sharded pools sized for the jobs at fal.
        client = http_client_for(settings)
    elif args.transport == "split":
        client = httpx.AsyncClient(timeout=30.0, transport=SplitTransport(args.max_concurrent))
    else:
        # One status stream per job at fal: the pool must hold them all, plus the rest.
        client = httpx.AsyncClient(timeout=30.0, transport=httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=args.max_concurrent + 200,
                                max_keepalive_connections=200)))
    marks: dict[str, dict[int, float]] = defaultdict(dict)
    in_flight = 0
    peak_in_flight = 0

    def on_mark(job_id: int, mark: str, at: float) -> None:
        marks[mark][job_id] = at

    received: dict[str, float] = {}  # prompt -> when its command reached Bot.handle
    accepted: dict[str, int] = {}  # prompt -> job id

    def on_state(job: Any) -> None:
        nonlocal in_flight, peak_in_flight
        if job.state is JobState.ACCEPTED:
            accepted[job.prompt] = job.id
            in_flight += 1
            peak_in_flight = max(peak_in_flight, in_flight)
        elif job.state.final:
            in_flight -= 1

    async with client as http:
        fal = FalClient(http, key=None, queue_url=sim_url, rest_url=sim_url,
                        request_timeout=30.0, stream_read_timeout=60.0)
        port = BenchPort()
        runner = JobRunner(settings, store, Quota(store, settings), fal, http)
        runner.hooks.on_mark = on_mark
        runner.hooks.on_state = on_state
        runner.register_port(port)
        await runner.start()

        bot = Bot(settings, store, runner.quota, runner)
        users = [User(platform="console", id=f"u{i}", name=f"user {i}") for i in range(50)]
        place = Place(platform="console", channel="bench", workspace="w")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu_before = time.process_time()
        started = time.perf_counter()

        async def command(index: int) -> None:
            # The whole command path, as a chat message arrives: parse, price, quota, submit.
            inv = Invocation(user=users[index % len(users)], place=place, command="video",
                             text=_command_text(index), event_id=f"bench-{index}")
            received[f"benchmark job {index}"] = time.perf_counter()
            await bot.handle(inv, port)

        commands: list[asyncio.Task[None]] = []
        interval = 1.0 / args.rate
        for index in range(n):
            # Commands arrive at a steady rate, as they would from chat.
            due = started + index * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            commands.append(asyncio.create_task(command(index)))
        await asyncio.gather(*commands)
        renewals = await _time_renewals(store, in_flight)
        finals = await asyncio.gather(*(runner.wait(job_id) for job_id in accepted.values()))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        completed_at = (await http.get(f"{side_url}/completed")).json()
        await runner.stop()
    await store.close()

    submit_ms: list[float] = []
    done_ms: list[float] = []
    done_with_download_ms: list[float] = []
    download_ms: list[float] = []
    handed_at = port.handed
    for job in finals:
        called = received.get(job.prompt)
        sent = marks["fal_submit"].get(job.id)
        if called is not None and sent is not None:
            submit_ms.append((sent - called) * 1000)
        handed = handed_at.get(job.id)
        fal_done = completed_at.get(job.fal_request_id or "")
        d0, d1 = marks["download_start"].get(job.id), marks["download_end"].get(job.id)
        if handed is not None and fal_done is not None and d0 is not None and d1 is not None:
            total = (handed - fal_done) * 1000
            download = (d1 - d0) * 1000
            done_with_download_ms.append(total)
            download_ms.append(download)
            done_ms.append(total - download)

    states = [job.state for job in finals]
    return {
        "count": n,
        "delivered": len(handed_at),
        "done": states.count(JobState.DONE),
        "failed": states.count(JobState.FAILED),
        "peak_in_flight": peak_in_flight,
        "wall_seconds": round(wall, 2),
        "rss_before_jobs_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss, 1),
        "cpu_seconds_per_job": round(cpu / n, 5),
        "fal_requests_per_job": round(fal.request_count / n, 2),
        "card_edits_per_job": round(port.edits / n, 2),
        # What one lease renewal (the heartbeat's, of every job this process holds) costs
        # with all jobs in flight, store queue included.
        "lease_renewal_ms": renewals,
        "command_to_fal_ms": latency_ms(submit_ms),
        "user_messages": port.told,  # refusals or errors told to users: 0 in a clean run
        "done_to_port_ms": latency_ms(done_ms),
        "done_to_port_with_download_ms": latency_ms(done_with_download_ms),
        "download_ms": latency_ms(download_ms),
        "config": {"rate_per_s": args.rate, "run_seconds": args.run_seconds,
                   "sim_concurrency": args.sim_concurrency, "max_concurrent": args.max_concurrent,
                   "edit_interval_seconds": args.edit_interval, "endpoint": ENDPOINT_KEY,
                   "transport": args.transport},
    }


async def _time_renewals(store: Any, held: int, times: int = 5) -> dict[str, Any]:
    took = []
    for _ in range(times):
        t0 = time.perf_counter()
        await store.renew_leases(["console"])
        took.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.2)
    return {"jobs_held": held, **latency_ms(took)}


async def run_quota() -> Any:
    try:
        from bench.quota import run_quota_bench  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        # TODO(bench/quota.py): the store engineer's run_quota_bench is not in the tree yet.
        return {"todo": "bench/quota.py with run_quota_bench() is not written yet"}
    result = run_quota_bench()
    if inspect.isawaitable(result):
        result = await result
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    quota = await run_quota()
    jobs = await run_jobs(args)
    return {"quota": quota, "jobs": jobs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="commands per second")
    parser.add_argument("--run-seconds", type=float, default=45.0, help="time each job runs at fal")
    parser.add_argument("--sim-concurrency", type=int, default=1000)
    parser.add_argument("--max-concurrent", type=int, default=1000, help="backend.max_concurrent")
    parser.add_argument("--edit-interval", type=float, default=3.0)
    parser.add_argument("--transport", choices=("bot", "split", "single"), default="bot",
                        help="bot: the client ltx-bot runs with (default); split: streams in a "
                        "pool of their own; single: one pool for everything")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve_sim:
        asyncio.run(_serve_sim(args))
        return 0
    print(json.dumps(asyncio.run(main_async(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Queue benchmark: our stream-following client against the official fal-client's polling.

Runs N concurrent jobs on an in-process simulator (its own thread and event
loop, so server and clients do not share a loop) once with `bot.fal.FalClient`
and once with `fal_client.AsyncClient` at its default poll interval, and prints
one JSON object:

    {"jobs": N,
     "ours":       {"requests_per_job": .., "detect_ms_p50": .., "detect_ms_p99": ..},
     "fal_client": {"requests_per_job": .., "detect_ms_p50": .., "detect_ms_p99": ..}}

requests_per_job: HTTP requests the simulator saw per request id (submit,
status, stream, result), averaged over jobs. detect_ms: from the moment the
simulator marked a job done to the moment the client knew it was done.
All N jobs run at once (simulator concurrency N); their submissions are spread
over --ramp-seconds, the same for both clients. Our client uses
`bot.fal.new_http_client` (one client, sharded pools); fal-client uses its own.

    .venv/bin/python bench/queue.py [--jobs 200] [--run-seconds 5] [--ramp-seconds 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file's
# name would then shadow the standard library's `queue` (which asyncio needs).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import Future  # noqa: E402
from types import TracebackType  # noqa: E402
from typing import Any  # noqa: E402

import fal_client  # noqa: E402
import fal_client.client  # noqa: E402
import httpx  # noqa: E402

from bot.fal import Completed, Failed, FalClient, new_http_client  # noqa: E402
from bot.sim import SimOptions, Simulator  # noqa: E402

ENDPOINT = "fal-ai/ltx-video-13b-distilled/multiconditioning"
# Tiny renders: the benchmark measures the queue protocol, not the encoder.
PAYLOAD: dict[str, Any] = {"prompt": "benchmark", "number_of_frames": 9, "frame_rate": 8}


class SimThread:
    """The simulator on its own event loop in a background thread."""

    def __init__(self, options: SimOptions) -> None:
        self.sim = Simulator(options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim", daemon=True)

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def __enter__(self) -> Simulator:
        self._thread.start()
        self._call(self.sim.start())
        return self.sim

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._call(self.sim.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def summary(sim: Simulator, detected: dict[str, float]) -> dict[str, float]:
    delays = [(detected[rid] - sim.completed_at[rid]) * 1000 for rid in detected]
    counts = [sim.requests_by_id[rid] for rid in detected]
    return {
        "requests_per_job": round(statistics.fmean(counts), 2),
        "detect_ms_p50": round(percentile(delays, 0.50), 2),
        "detect_ms_p99": round(percentile(delays, 0.99), 2),
    }


async def run_ours(sim: Simulator, jobs: int, ramp: float) -> dict[str, float]:
    detected: dict[str, float] = {}
    limits = httpx.Limits(max_connections=jobs + 50, max_keepalive_connections=jobs + 50)
    async with new_http_client(timeout=60.0, shards=max(1, jobs // 8), limits=limits) as http:
        fal = FalClient(http, key="bench-key", queue_url=sim.url, rest_url=sim.url)

        async def one(index: int) -> None:
            await asyncio.sleep(ramp * index / jobs)
            handle = await fal.enqueue(ENDPOINT, PAYLOAD)
            async for event in fal.events(handle):
                if isinstance(event, Completed | Failed):
                    detected[handle.request_id] = time.perf_counter()
            await fal.result(handle)

        await asyncio.gather(*(one(i) for i in range(jobs)))
    return summary(sim, detected)


async def run_official(sim: Simulator, jobs: int, ramp: float) -> dict[str, float]:
    detected: dict[str, float] = {}
    # fal-client builds queue URLs from this constant (https://queue.fal.run/ by default).
    fal_client.client.QUEUE_URL_FORMAT = f"{sim.url}/"
    client = fal_client.AsyncClient(key="bench-key")

    async def one(index: int) -> None:
        await asyncio.sleep(ramp * index / jobs)
        handle = await client.submit(ENDPOINT, PAYLOAD)
        async for status in handle.iter_events(
            with_logs=False, interval=fal_client.client.DEFAULT_QUEUE_POLL_INTERVAL
        ):
            if isinstance(status, fal_client.Completed):
                detected[handle.request_id] = time.perf_counter()
        await client.result(ENDPOINT, handle.request_id)

    await asyncio.gather(*(one(i) for i in range(jobs)))
    return summary(sim, detected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--run-seconds", type=float, default=5.0)
    # Jobs start over this window (all still run at once): real jobs do not all end in
    # the same millisecond, and a herd would measure CPU queueing, not the protocol.
    parser.add_argument("--ramp-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    options = SimOptions(run_seconds=args.run_seconds, concurrency=args.jobs, scale=0.1,
                         steps=10, seed=1)
    with SimThread(options) as sim:
        ours = asyncio.run(run_ours(sim, args.jobs, args.ramp_seconds))
        official = asyncio.run(run_official(sim, args.jobs, args.ramp_seconds))
    print(json.dumps({"jobs": args.jobs, "ours": ours, "fal_client": official}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

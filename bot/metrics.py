"""OpenMetrics for Prometheus: what `ltx-bot run` and `chat` serve on `[metrics] port`.

All instrumentation lives here. Elsewhere there are only one-line hook calls
(`metrics.fal_error(...)`, `metrics.delivered(...)`, `metrics.adapter_error(...)`),
which do nothing until `serve` has started an endpoint in this process.

Two kinds of figures:

- read from the store when Prometheus scrapes (`StoreCollector`): jobs by state and
  model, the local queue and the jobs at fal, credits and USD spent. They are the
  store's, so every process of a deployment reports the same totals (sum them
  with `max`, not `sum`, across processes);
- counted in this process as things happen: state changes, fal's time per job and
  its errors by type, delivered sizes and re-encodes, adapter errors.

The library is prometheus_client (the Prometheus project's own Python client);
its HTTP server runs on a thread, and a scrape reads the store by handing one
read-only transaction to the bot's event loop and waiting for it (a bounded wait:
a store that does not answer makes the scrape fail, never the bot).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.catalog import by_endpoint_id
from bot.config import Settings
from bot.model import JobRecord, JobState
from bot.store import Store

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_SECONDS = 5.0
LOCAL_QUEUE = (JobState.ACCEPTED, JobState.WAITING)
AT_FAL = (JobState.SUBMITTED, JobState.IN_QUEUE, JobState.RUNNING)
# Sizes of delivered files, 100 KiB to 500 MiB.
SIZE_BUCKETS = tuple(float(2**k * 100 * 1024) for k in range(13))
FAL_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)


def model_of(endpoint_id: str) -> str:
    """The catalog's short name of an endpoint (the label value), or its id if unknown."""
    try:
        return by_endpoint_id(endpoint_id).key
    except LookupError:
        return endpoint_id


class StoreCollector(Collector):
    """Figures read from the store at scrape time, on the bot's event loop."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        future = asyncio.run_coroutine_threadsafe(self.store.run(_read, write=False), self.loop)
        try:
            counts, credits, usd = future.result(SCRAPE_TIMEOUT_SECONDS)
        except FutureTimeout:
            future.cancel()
            raise
        jobs = GaugeMetricFamily("ltx_bot_jobs", "Jobs in the store by state and model.",
                                 labels=["state", "model"])
        depth = {"local": 0, "fal": 0}
        for (state, endpoint_id), n in sorted(counts.items()):
            jobs.add_metric([state, model_of(endpoint_id)], n)
            if state in {s.value for s in LOCAL_QUEUE}:
                depth["local"] += n
            elif state in {s.value for s in AT_FAL}:
                depth["fal"] += n
        yield jobs
        queue = GaugeMetricFamily(
            "ltx_bot_queue_depth",
            "Unfinished jobs waiting here for a slot (local) or sent to fal and not done (fal).",
            labels=["where"])
        for where, n in depth.items():
            queue.add_metric([where], n)
        yield queue
        yield GaugeMetricFamily("ltx_bot_credits_spent",
                                "Credits charged by the ledger, all time (reserved, settled, refunded).",
                                value=credits)
        yield GaugeMetricFamily("ltx_bot_usd_spent",
                                "US dollars charged by the ledger, all time.", value=usd)


def _read(tx: Any) -> tuple[dict[tuple[str, str], int], int, float]:
    rows = tx.fetch("SELECT state, endpoint_id, COUNT(*) AS n FROM jobs GROUP BY state, endpoint_id")
    spent = tx.fetch("SELECT COALESCE(SUM(credits), 0) AS credits, COALESCE(SUM(usd), 0) AS usd "
                     "FROM ledger WHERE kind != 'grant'")[0]
    return ({(r["state"], r["endpoint_id"]): int(r["n"]) for r in rows},
            int(spent["credits"]), float(spent["usd"]))


class Metrics:
    """This process's counters, and the endpoint that serves them with the store's figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # no auto_describe: collect() must not run on the loop
        self.transitions = Counter(
            "ltx_bot_job_transitions", "Job state changes this process wrote, by new state and model.",
            ["state", "model"], registry=self.registry)
        self.fal_seconds = Histogram(
            "ltx_bot_fal_seconds", "From submitting a job to fal to fal reporting it finished.",
            ["model"], buckets=FAL_BUCKETS, registry=self.registry)
        self.fal_errors = Counter(
            "ltx_bot_fal_errors", "Errors fal answered (or transport failures talking to it), by type.",
            ["type"], registry=self.registry)
        self.failed = Counter(
            "ltx_bot_jobs_failed", "Jobs this process ended as failed, by the error's type "
            "(fal's error_type for a job fal failed).", ["type"], registry=self.registry)
        self.delivery_bytes = Histogram(
            "ltx_bot_delivery_bytes", "Size of each delivered video.", buckets=SIZE_BUCKETS,
            registry=self.registry)
        self.reencodes = Counter(
            "ltx_bot_reencodes", "Results re-encoded to fit a chat's upload limit.",
            registry=self.registry)
        self.adapter_errors = Counter(
            "ltx_bot_adapter_errors", "Unexpected failures handling a chat event, by what ran.",
            ["context"], registry=self.registry)
        self._submitted: dict[int, float] = {}
        self._models: dict[int, str] = {}

    # -- the runner's hooks (RunnerHooks.on_state / on_mark)

    def on_state(self, job: JobRecord) -> None:
        model = model_of(job.endpoint_id)
        self._models[job.id] = model
        self.transitions.labels(job.state.value, model).inc()
        if job.state is JobState.FAILED:
            self.failed.labels(job.error_type or "unknown").inc()
        if job.state.final:
            self._submitted.pop(job.id, None)
            self._models.pop(job.id, None)

    def on_mark(self, job_id: int, mark: str, at: float) -> None:
        if mark == "fal_submit":
            self._submitted[job_id] = at
        elif mark == "completed" and job_id in self._submitted:
            model = self._models.get(job_id, "unknown")
            self.fal_seconds.labels(model).observe(at - self._submitted.pop(job_id))


@dataclass
class Endpoint:
    """A running metrics endpoint; `stop()` ends it."""

    metrics: Metrics
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        global current
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if current is self.metrics:
            current = None


# The counters the hook functions below feed; None until an endpoint is served.
current: Metrics | None = None


def serve(settings: Settings, store: Store, hooks: Any) -> Endpoint | None:
    """Start the endpoint when `[metrics] port` is set (else None), and hook the runner.
    Call from the running event loop (a scrape reads the store on it)."""
    global current
    if settings.metrics.port is None:
        return None
    metrics = Metrics()
    metrics.registry.register(StoreCollector(store, asyncio.get_running_loop()))
    _chain(hooks, "on_state", metrics.on_state)
    _chain(hooks, "on_mark", metrics.on_mark)
    server, thread = start_http_server(settings.metrics.port, addr=settings.metrics.host,
                                       registry=metrics.registry)
    current = metrics
    log.info("Metrics: OpenMetrics at http://%s:%d/metrics", settings.metrics.host,
             server.server_port)
    return Endpoint(metrics, server, thread)


def _chain(hooks: Any, name: str, added: Any) -> None:
    """Add `added` to the runner hook `name`, keeping whatever was there (tests' hooks)."""
    before = getattr(hooks, name)
    if before is None:
        setattr(hooks, name, added)
        return

    def both(*args: Any) -> None:
        before(*args)
        added(*args)

    setattr(hooks, name, both)


# ---------------------------------------------------------------- hook calls from elsewhere


def fal_error(kind: str) -> None:
    """fal answered an error (its `error_type`, else the HTTP status) or could not be reached."""
    if current is not None:
        current.fal_errors.labels(kind).inc()


def delivered(size: int | None, reencoded: bool) -> None:
    """A video was handed to the chat: its size, and whether it was re-encoded to fit."""
    if current is None:
        return
    if size is not None:
        current.delivery_bytes.observe(size)
    if reencoded:
        current.reencodes.inc()


def adapter_error(context: str) -> None:
    """An unexpected failure reached the error boundary (`context`: what was running)."""
    if current is not None:
        current.adapter_errors.labels(context.split(" ", 1)[0] or "unknown").inc()

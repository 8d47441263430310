"""A fal-compatible queue server on loopback that renders real MP4 files.

It speaks the queue protocol the way fal documents it (and the way the
official `fal-client` expects it): submit to `POST /{endpoint_id}`; status,
status stream, result and cancel under `/{owner}/{app}/requests/{id}`; the
storage token and `/files/upload` for inputs. Inputs are validated with the
catalog's models, so a payload the simulator accepts is one fal would accept.

Jobs wait IN_QUEUE behind a concurrency limit, log "Step k/N (p%)" while they
run, and end with a small real video (see `render.py`). Faults can be injected
at random (`fail_rate`, `drop_stream_rate`, `error_rate`) or exactly
(`fail_next`), so clients can be tested against the failures fal really has.

It never fetches anything: input URLs that point at the simulator itself (or
`data:` URIs) are read locally, anything else gets a procedural scene.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import json
import logging
import random
import re
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bot.catalog import ENDPOINTS, Endpoint, UnknownModel, by_endpoint_id, output_geometry
from bot.sim.render import RenderSpec, load_picture, render_video, scaled_size

log = logging.getLogger(__name__)

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SimOptions:
    queue_seconds: float = 0.0  # least time a job waits IN_QUEUE (cold start)
    run_seconds: float = 0.5  # time a job spends IN_PROGRESS (rendering overlaps it)
    concurrency: int = 2  # jobs IN_PROGRESS at once; the rest wait with positions
    fail_rate: float = 0.0  # share of answers that are 429/503
    drop_stream_rate: float = 0.0  # share of status streams cut mid-job
    error_rate: float = 0.0  # share of requests ending COMPLETED with error + error_type
    scale: float = 0.25  # rendered size vs requested; fps and frame count are exact
    seed: int = 0
    keepalive_seconds: float = 15.0
    result_ttl_seconds: float = 3600.0
    steps: int = 10  # progress log lines per job
    token_ttl_seconds: float = 3600.0
    api_key: str | None = None  # when set, queue and token calls need `Key <api_key>`
    render_workers: int = 2  # threads that encode videos (more only adds GIL contention)


@dataclass
class _Job:
    id: str
    endpoint: Endpoint
    payload: dict[str, Any]
    seed: int
    priority: str
    submitted: float
    start_deadline: float | None = None
    state: str = IN_QUEUE
    position: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    result: dict[str, Any] | None = None
    result_status: int = 200
    inference_time: float | None = None
    done_at: float | None = None  # time.monotonic()
    cancel_requested: bool = False
    cancel_signal: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    slot: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None

    @property
    def app_id(self) -> str:
        return self.endpoint.app_id


@dataclass
class _Fault:
    status: int
    remaining: int
    path_contains: str


@dataclass
class _StoredFile:
    path: Path
    content_type: str


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=dict(headers or {}))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _safe_name(name: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:100] or fallback


def _input_media_urls(payload: Mapping[str, Any]) -> list[str]:
    """Every media URL in an input, the main one first (LTX inputs name them *_url)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(value, str) and key.endswith("_url") and key != "end_image_url":
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    return found


class Simulator:
    def __init__(
        self, options: SimOptions | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.options = options or SimOptions()
        self.host = host
        self.port = port
        self.url = ""
        self.completed_at: dict[str, float] = {}
        self.requests_seen = 0
        # Beyond the contract, for tests and benchmarks:
        self.requests_by_id: collections.Counter[str] = collections.Counter()
        self.requests_by_kind: collections.Counter[str] = collections.Counter()
        self.authorizations: collections.Counter[str] = collections.Counter()
        self.submitted: dict[str, dict[str, Any]] = {}
        self.faults_injected = 0
        self._rng = random.Random(self.options.seed)
        self._jobs: dict[str, _Job] = {}
        self._queued: list[_Job] = []
        self._running: set[str] = set()
        self._faults: list[_Fault] = []
        self._files: dict[str, _StoredFile] = {}
        self._tokens: dict[str, float] = {}
        self._renders: set[asyncio.Future[Any]] = set()
        self._render_pool: ThreadPoolExecutor | None = None
        self._closing = False
        self._tmp: Path | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        self._tmp = Path(tempfile.mkdtemp(prefix="ltx-sim-"))
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/storage/auth/token", self._token)
        app.router.add_post("/files/upload", self._upload)
        app.router.add_get("/files/{file_id}/{name}", self._file)
        base = "/{owner}/{app}/requests/{request_id}"
        app.router.add_get(base + "/status", self._status)
        app.router.add_get(base + "/status/stream", self._stream)
        app.router.add_put(base + "/cancel", self._cancel)
        app.router.add_get(base, self._result)
        app.router.add_post("/{endpoint_id:.+}", self._submit)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        self.url = f"http://{host}:{port}"
        log.info("fal simulator listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        # Open status streams would hold the server's shutdown: wake them to end.
        self._closing = True
        for job in self._jobs.values():
            self._notify(job)
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        tasks = [j.task for j in self._jobs.values() if j.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        # Render threads cannot be interrupted; wait so the temp dir is not pulled from under them.
        await asyncio.gather(*self._renders, return_exceptions=True)
        if self._render_pool is not None:
            self._render_pool.shutdown(wait=False)
            self._render_pool = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            await asyncio.to_thread(shutil.rmtree, self._tmp, True)
            self._tmp = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def fail_next(self, status: int, count: int = 1, *, path_contains: str = "") -> None:
        """The next `count` requests whose path contains `path_contains` answer `status`."""
        self._faults.append(_Fault(status, count, path_contains))

    def job_state(self, request_id: str) -> str | None:
        job = self._jobs.get(request_id)
        return job.state if job else None

    async def wait_state(self, request_id: str, state: str) -> None:
        """Until the job reaches `state` (or a later one); for tests that act mid-job."""
        order = (IN_QUEUE, IN_PROGRESS, COMPLETED)
        job = self._jobs[request_id]
        while order.index(job.state) < order.index(state):
            waiter = job.changed
            await waiter.wait()

    # ------------------------------------------------------------ middleware and faults

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        self.requests_seen += 1
        self.authorizations[request.headers.get("Authorization", "")] += 1
        request_id = request.match_info.get("request_id")
        if request_id:
            self.requests_by_id[request_id] += 1
        fault = self._fault_for(request)
        if fault is not None:
            self.faults_injected += 1
            return fault
        return await handler(request)

    def _fault_for(self, request: web.Request) -> web.Response | None:
        path = request.path
        for fault in self._faults:
            if fault.remaining > 0 and fault.path_contains in path:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                return self._fault_response(fault.status)
        is_download = request.method == "GET" and path.startswith("/files/")
        if not is_download and self.options.fail_rate > 0 and self._rng.random() < self.options.fail_rate:
            return self._fault_response(self._rng.choice((429, 503)))
        return None

    @staticmethod
    def _fault_response(status: int) -> web.Response:
        if status == 429:
            return _json({"detail": "Too many requests, slow down."}, 429, {"Retry-After": "0"})
        if status == 503:
            kind = "runner_scheduling_failure"
            return _json({"detail": "No runner could take the request.", "error_type": kind},
                         503, {"X-Fal-Error-Type": kind})
        if status == 504:
            kind = "request_timeout"
            return _json({"detail": "The request timed out.", "error_type": kind},
                         504, {"X-Fal-Error-Type": kind})
        return _json({"detail": f"Simulated HTTP {status}."}, status)

    def _refuse_auth(self, request: web.Request) -> web.Response | None:
        wanted = self.options.api_key
        if wanted and request.headers.get("Authorization") != f"Key {wanted}":
            return _json({"detail": "Invalid or missing API key."}, 401)
        return None

    # ------------------------------------------------------------ queue: submit

    async def _submit(self, request: web.Request) -> web.Response:
        self.requests_by_kind["submit"] += 1
        endpoint_id = request.match_info["endpoint_id"].strip("/")
        try:
            endpoint = by_endpoint_id(endpoint_id, ENDPOINTS)
        except UnknownModel:
            return _json({"detail": f"Application '{endpoint_id}' not found."}, 404)
        refused = self._refuse_auth(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _json({"detail": [{"loc": ["body"], "msg": "Invalid JSON body.",
                                      "type": "json_invalid"}]}, 422)
        if not isinstance(body, dict):
            return _json({"detail": [{"loc": ["body"], "msg": "Input should be an object.",
                                      "type": "dict_type"}]}, 422)
        try:
            model = endpoint.input_model.model_validate(body)
        except ValidationError as exc:
            detail = [
                {"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
                for err in exc.errors()
            ]
            return _json({"detail": detail}, 422)
        payload = model.model_dump(mode="json")
        seed = payload.get("seed")
        if not isinstance(seed, int):
            seed = self._rng.randrange(2**31)
        priority = request.headers.get("X-Fal-Queue-Priority", "normal")
        timeout = request.headers.get("X-Fal-Request-Timeout")
        now = time.monotonic()
        job = _Job(id=str(uuid.uuid4()), endpoint=endpoint, payload=payload, seed=seed,
                   priority=priority if priority in ("normal", "low") else "normal",
                   submitted=now)
        with contextlib.suppress(ValueError, TypeError):
            if timeout is not None:
                job.start_deadline = now + float(timeout)
        self._prune()
        self._jobs[job.id] = job
        self.requests_by_id[job.id] += 1
        self.submitted[job.id] = {
            "endpoint_id": endpoint_id, "input": body, "priority": priority,
            "timeout": timeout, "webhook": request.query.get("fal_webhook"),
        }
        self._enqueue(job)
        job.task = asyncio.create_task(self._lifecycle(job), name=f"sim-job-{job.id}")
        urls = self._urls(job)
        return _json({"request_id": job.id, "status": IN_QUEUE, "queue_position": job.position,
                      **urls}, headers={"X-Fal-Request-Id": job.id})

    def _urls(self, job: _Job) -> dict[str, str]:
        base = f"{self.url}/{job.app_id}/requests/{job.id}"
        return {"response_url": base, "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel"}

    def _prune(self) -> None:
        # Long standalone runs should not keep every job forever.
        cutoff = time.monotonic() - 2 * self.options.result_ttl_seconds
        for job_id in [j.id for j in self._jobs.values() if j.done_at and j.done_at < cutoff]:
            del self._jobs[job_id]

    # ------------------------------------------------------------ queue: scheduling

    def _enqueue(self, job: _Job) -> None:
        if job.priority == "low":
            self._queued.append(job)
        else:
            index = next((i for i, q in enumerate(self._queued) if q.priority == "low"),
                         len(self._queued))
            self._queued.insert(index, job)
        self._pump()

    def _pump(self) -> None:
        """Start ready jobs while there are free slots, then refresh queue positions."""
        limit = max(1, self.options.concurrency)
        for job in list(self._queued):
            if len(self._running) >= limit:
                break
            if job.slot is not None and not job.slot.done():
                self._queued.remove(job)
                self._running.add(job.id)
                job.slot.set_result(None)
        for index, job in enumerate(self._queued):
            if job.position != index:
                job.position = index
                self._notify(job)

    def _notify(self, job: _Job) -> None:
        # Waiters hold the old event; swapping before setting wakes each of them once.
        old, job.changed = job.changed, asyncio.Event()
        old.set()

    async def _lifecycle(self, job: _Job) -> None:
        try:
            if self.options.queue_seconds > 0:
                await asyncio.sleep(self.options.queue_seconds)
            job.slot = asyncio.get_running_loop().create_future()
            self._pump()
            try:
                if job.start_deadline is None:
                    await job.slot
                else:
                    await asyncio.wait_for(job.slot, max(0.0, job.start_deadline - time.monotonic()))
            except TimeoutError:
                if job in self._queued:
                    self._queued.remove(job)
                self._finish(job, error="The request timed out before it started.",
                             error_type="request_timeout", status=504)
                return
            await self._run(job)
        except asyncio.CancelledError:
            pass
        finally:
            self._running.discard(job.id)
            if job in self._queued:
                self._queued.remove(job)
            self._pump()

    async def _run(self, job: _Job) -> None:
        if job.cancel_requested:
            self._finish_cancelled(job)
            return
        job.state = IN_PROGRESS
        job.position = None
        started = time.monotonic()
        self._log(job, f"Generating with {job.endpoint.title}")
        loop = asyncio.get_running_loop()
        render = asyncio.ensure_future(loop.run_in_executor(self._executor(), self._render, job))
        self._renders.add(render)
        render.add_done_callback(self._renders.discard)
        steps = max(1, self.options.steps)
        pause = self.options.run_seconds / steps
        will_fail = self.options.error_rate > 0 and self._rng.random() < self.options.error_rate
        for step in range(1, steps + 1):
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.cancel_signal.wait(), pause)
            if job.cancel_requested:
                self._finish_cancelled(job)
                return
            self._log(job, f"Step {step}/{steps} ({round(100 * step / steps)}%)")
        if will_fail:
            # 500, not 503: the request ran and failed; retrying the result cannot help.
            self._finish(job, error="The runner disconnected while generating.",
                         error_type="runner_disconnected", status=500)
            return
        try:
            result = await asyncio.shield(render)
        except Exception:
            log.exception("simulator render failed for %s", job.id)
            self._finish(job, error="Rendering failed.", error_type="internal_error", status=500)
            return
        job.inference_time = round(time.monotonic() - started, 3)
        self._finish(job, result=result)

    def _executor(self) -> ThreadPoolExecutor:
        if self._render_pool is None:
            self._render_pool = ThreadPoolExecutor(
                max_workers=max(1, self.options.render_workers), thread_name_prefix="sim-render"
            )
        return self._render_pool

    def _log(self, job: _Job, message: str) -> None:
        job.logs.append({"message": message, "level": "INFO", "source": "USER",
                         "timestamp": _now_iso()})
        self._notify(job)

    def _finish(self, job: _Job, *, result: dict[str, Any] | None = None, error: str | None = None,
                error_type: str | None = None, status: int = 200) -> None:
        if job.state == COMPLETED:
            return
        job.state = COMPLETED
        job.position = None
        job.result = result
        job.error, job.error_type = error, error_type
        job.result_status = status if error else 200
        job.done_at = time.monotonic()
        self.completed_at[job.id] = time.perf_counter()
        self._notify(job)

    def _finish_cancelled(self, job: _Job) -> None:
        self._finish(job, error="The request was cancelled.", error_type="request_cancelled",
                     status=400)

    # ------------------------------------------------------------ queue: reading

    def _lookup(self, request: web.Request, kind: str,
                missing: dict[str, Any] | None = None) -> _Job | web.Response:
        """The preamble every per-request route shares: count it, check auth, find the job."""
        self.requests_by_kind[kind] += 1
        refused = self._refuse_auth(request)
        if refused is not None:
            return refused
        job = self._job_for(request)
        if job is None:
            return _json(missing or {"detail": "Request not found."}, 404)
        return job

    def _job_for(self, request: web.Request) -> _Job | None:
        job = self._jobs.get(request.match_info["request_id"])
        app_id = f"{request.match_info['owner']}/{request.match_info['app']}"
        # Like fal, a request is only found under its own owner/app.
        if job is None or job.app_id != app_id:
            return None
        return job

    def _status_body(self, job: _Job, with_logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"status": job.state, "request_id": job.id, **self._urls(job),
                                "logs": list(job.logs) if with_logs else None}
        if job.state == IN_QUEUE:
            body["queue_position"] = job.position if job.position is not None else 0
        elif job.state == COMPLETED:
            body["metrics"] = (
                {"inference_time": job.inference_time} if job.inference_time is not None else {}
            )
            if job.error:
                body["error"] = job.error
                body["error_type"] = job.error_type
        return body

    async def _status(self, request: web.Request) -> web.Response:
        job = self._lookup(request, "status")
        if isinstance(job, web.Response):
            return job
        body = self._status_body(job, _flag(request.query.get("logs")))
        return _json(body, 200 if job.state == COMPLETED else 202,
                     {"X-Fal-Request-Id": job.id})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request, "stream")
        if isinstance(job, web.Response):
            return job
        with_logs = _flag(request.query.get("logs"))
        drop = self.options.drop_stream_rate > 0 and self._rng.random() < self.options.drop_stream_rate
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "X-Fal-Request-Id": job.id})
        await response.prepare(request)
        last = ""
        try:
            while True:
                waiter = job.changed
                text = json.dumps(self._status_body(job, with_logs))
                if text != last:
                    await response.write(f"data: {text}\n\n".encode())
                    last = text
                if job.state == COMPLETED or self._closing:
                    break
                if drop and job.state == IN_PROGRESS:
                    # A cut connection, not a clean end: the client sees a broken body.
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                try:
                    await asyncio.wait_for(waiter.wait(), self.options.keepalive_seconds)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async def _result(self, request: web.Request) -> web.Response:
        job = self._lookup(request, "result")
        if isinstance(job, web.Response):
            return job
        headers = {"X-Fal-Request-Id": job.id}
        if job.state != COMPLETED:
            return _json({"detail": "Request is still in progress."}, 400, headers)
        assert job.done_at is not None
        if time.monotonic() - job.done_at > self.options.result_ttl_seconds:
            return _json({"detail": "Request not found."}, 404, headers)
        if job.error:
            if job.error_type:
                headers["X-Fal-Error-Type"] = job.error_type
            return _json({"detail": job.error, "error_type": job.error_type},
                         job.result_status, headers)
        return _json(job.result, 200, headers)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._lookup(request, "cancel", {"status": "NOT_FOUND"})
        if isinstance(job, web.Response):
            return job
        if job.state == COMPLETED:
            return _json({"status": "ALREADY_COMPLETED"}, 400)
        if job in self._queued:
            # Still queued: fal removes it at once.
            self._queued.remove(job)
            self._finish_cancelled(job)
            if job.task is not None:
                job.task.cancel()
            self._pump()
            return _json({"status": "OK"}, 200)
        # Running (or just handed a slot): the runner is told and stops at its next step.
        job.cancel_requested = True
        job.cancel_signal.set()
        return _json({"status": "CANCELLATION_REQUESTED"}, 202)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _json({"detail": "Not found."}, 404)

    # ------------------------------------------------------------ storage

    async def _token(self, request: web.Request) -> web.Response:
        self.requests_by_kind["token"] += 1
        refused = self._refuse_auth(request)
        if refused is not None:
            return refused
        token = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + timedelta(seconds=self.options.token_ttl_seconds)
        self._tokens[token] = time.monotonic() + self.options.token_ttl_seconds
        return _json({"token": token, "token_type": "Bearer", "base_url": self.url,
                      "expires_at": expires.isoformat()})

    async def _upload(self, request: web.Request) -> web.Response:
        self.requests_by_kind["upload"] += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token)
        if scheme != "Bearer" or expiry is None or expiry < time.monotonic():
            return _json({"detail": "Invalid upload token."}, 401)
        assert self._tmp is not None
        file_id = uuid.uuid4().hex
        name = _safe_name(request.headers.get("X-Fal-File-Name", ""), f"{file_id}.bin")
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        dest = self._tmp / f"upload-{file_id}"
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            async for chunk in request.content.iter_chunked(256 * 1024):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        self._files[file_id] = _StoredFile(dest, content_type)
        return _json({"access_url": f"{self.url}/files/{file_id}/{name}"})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            return _json({"detail": "File not found."}, 404)
        return web.FileResponse(stored.path, headers={"Content-Type": stored.content_type})

    # ------------------------------------------------------------ rendering

    def _read_input(self, url: str) -> bytes | None:
        """Bytes behind an input URL, when they are local (our files or a data: URI)."""
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                return base64.b64decode(data, validate=False) if header.endswith(";base64") else data.encode()
            except (binascii.Error, ValueError):
                return None
        prefix = f"{self.url}/files/"
        if self.url and url.startswith(prefix):
            file_id = url[len(prefix):].split("/", 1)[0]
            stored = self._files.get(file_id)
            if stored is not None:
                return stored.path.read_bytes()
        return None

    def _render(self, job: _Job) -> dict[str, Any]:
        """Runs in a worker thread: reads inputs, writes the MP4, returns the output JSON."""
        endpoint, payload = job.endpoint, job.payload
        source = None
        for url in _input_media_urls(payload):
            data = self._read_input(url)
            if data is not None:
                source = load_picture(data)
                if source is not None:
                    break
        # `auto` follows the input's shape, as the bot's estimate assumes.
        aspect = source.width / source.height if source is not None and source.height else None
        width, height, frames = output_geometry(endpoint, payload, aspect)
        if endpoint.frames is not None and endpoint.frames.fps_field:
            fps = float(payload.get(endpoint.frames.fps_field, endpoint.frames.default_fps))
        else:
            fps = float(endpoint.fixed_fps or 25.0)
        out_w, out_h = scaled_size(width, height, self.options.scale)
        prompt = str(payload.get("prompt", ""))
        spec = RenderSpec(width=out_w, height=out_h, frames=frames, fps=fps, seed=job.seed,
                          prompt=prompt, source=source,
                          audio=endpoint.audio and bool(payload.get("generate_audio", True)),
                          reverse=bool(payload.get("reverse_video", False)))
        assert self._tmp is not None
        file_id = uuid.uuid4().hex
        name = f"{job.id}.mp4"
        dest = self._tmp / f"video-{file_id}.mp4"
        render_video(spec, dest)
        self._files[file_id] = _StoredFile(dest, "video/mp4")
        # Megapixel-priced models bill what was asked for: report that size, so
        # settling on the simulator charges what fal would (the pixels are scaled down).
        billed = endpoint.price.usd_per_megapixel is not None
        output = {
            "video": {
                "url": f"{self.url}/files/{file_id}/{name}",
                "content_type": "video/mp4",
                "file_name": name,
                "file_size": dest.stat().st_size,
                "width": width if billed else out_w,
                "height": height if billed else out_h,
                "fps": fps,
                "duration": round(frames / fps, 4),
                "num_frames": frames,
            },
            "seed": job.seed,
            "prompt": prompt,
        }
        endpoint.output_model.model_validate(output)
        return output


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltx-bot sim", description="Run the fal-compatible simulator on loopback."
    )
    defaults = SimOptions()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--queue-seconds", type=float, default=1.0)
    parser.add_argument("--run-seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--fail-rate", type=float, default=defaults.fail_rate)
    parser.add_argument("--drop-stream-rate", type=float, default=defaults.drop_stream_rate)
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate)
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keepalive-seconds", type=float, default=defaults.keepalive_seconds)
    parser.add_argument("--result-ttl-seconds", type=float, default=defaults.result_ttl_seconds)
    return parser


def options_from_args(args: argparse.Namespace) -> SimOptions:
    return SimOptions(
        queue_seconds=args.queue_seconds, run_seconds=args.run_seconds,
        concurrency=args.concurrency, fail_rate=args.fail_rate,
        drop_stream_rate=args.drop_stream_rate, error_rate=args.error_rate, scale=args.scale,
        seed=args.seed, keepalive_seconds=args.keepalive_seconds,
        result_ttl_seconds=args.result_ttl_seconds,
    )


async def _serve(sim: Simulator, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    url = await sim.start()
    print(f"fal simulator on {url}  (set backend.fal_queue_url = backend.fal_rest_url = {url})",
          flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sim = Simulator(options_from_args(args), host=args.host, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sim, asyncio.Event()))
    return 0

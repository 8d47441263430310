"""A fal-compatible queue server on loopback that renders real MP4 files.

It speaks the queue protocol the way fal documents it (and the way the
official `fal-client` expects it): submit to `POST /{endpoint_id}`; status,
status stream, result and cancel under `/{owner}/{app}/requests/{id}`; the
storage token and `/files/upload` for inputs. Inputs are validated with the
catalog's models, so a payload the simulator accepts is one fal would accept.

This module holds the routes and the command line; the queue and its jobs live
in `jobs.py`, results in `results.py` (rendered by `render.py`), files in
`files.py`. Faults can be injected at random (`fail_rate`, `drop_stream_rate`,
`error_rate`) or exactly (`fail_next`), so clients can be tested against the
failures fal really has.

It never fetches anything: input URLs that point at the simulator itself (or
`data:` URIs) are read locally, anything else gets a procedural scene.

With `SimOptions.state_dir` it keeps its requests and files there (`keeper.py`,
`state.py`): a restart serves finished results and runs unfinished requests on,
and several simulators may share one directory.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import random
import re
import secrets
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError

from bot.catalog import ENDPOINTS, Endpoint, UnknownModel, by_endpoint_id
from bot.sim import payloads
from bot.sim.files import FileStore
from bot.sim.jobs import COMPLETED, IN_PROGRESS, IN_QUEUE, STATE_ORDER, JobQueue, SimJob
from bot.sim.keeper import Keeper
from bot.sim.options import SimOptions
from bot.sim.results import render_result
from bot.sim.state import SimState

log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AccountFault = Literal["bad_key", "locked"]
# fal's answers (from fal's issue tracker: "All API requests return 403 ... User is locked").
ACCOUNT_FAULTS: dict[str, dict[str, Any]] = {
    "bad_key": {"detail": "Invalid API key."},
    "locked": {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                         "fal.ai/dashboard/billing."},
}
ACCOUNT_FAULT_STATUS = {"bad_key": 401, "locked": 403}


@dataclass
class _Fault:
    status: int
    remaining: int
    path_contains: str


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=dict(headers or {}))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _safe_name(name: str, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:100] or fallback


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object, or the 422 fal answers for anything else."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _json({"detail": [{"loc": ["body"], "msg": "Invalid JSON body.",
                                  "type": "json_invalid"}]}, 422)
    if not isinstance(body, dict):
        return _json({"detail": [{"loc": ["body"], "msg": "Input should be an object.",
                                  "type": "dict_type"}]}, 422)
    return body


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()]


class Simulator:
    """fal's queue and storage on loopback, for tests, benchmarks and trying the bot without
    a fal key. Beyond the protocol it counts what it saw (`requests_by_kind`, ...) and takes
    injected faults (`fail_next`)."""

    def __init__(
        self, options: SimOptions | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.options = options or SimOptions()
        self.host = host
        self.port = port
        self.url = ""
        self.requests_seen = 0
        # Beyond the contract, for tests and benchmarks:
        self.requests_by_id: collections.Counter[str] = collections.Counter()
        self.requests_by_kind: collections.Counter[str] = collections.Counter()
        self.authorizations: collections.Counter[str] = collections.Counter()
        self.submitted: dict[str, dict[str, Any]] = {}
        self.faults_injected = 0
        self.account_fault: AccountFault | None = None  # see `fail_account`
        self._rng = random.Random(self.options.seed)
        state = SimState(self.options.state_dir) if self.options.state_dir is not None else None
        self._files = FileStore(state.files if state is not None else None)
        self._keeper = Keeper(state, self._files, self.options) if state is not None else None
        keeper = self._keeper
        self._queue = JobQueue(self.options, self._rng, self._render,
                               on_change=keeper.save if keeper else None,
                               cancel_asked=keeper.cancel_asked if keeper else None)
        # The queue's own dicts: the routes look jobs up here, and tests reach in.
        self._jobs = self._queue.jobs
        self.completed_at = self._queue.completed_at
        self._faults: list[_Fault] = []
        self._tokens: dict[str, float] = {}
        self._runner: web.AppRunner | None = None

    def _render(self, job: SimJob) -> dict[str, Any]:
        return render_result(job, self._files, self.options.scale)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        self._files.open()
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/storage/auth/token", self._token)
        app.router.add_put("/_sim/account", self._set_account_fault)
        app.router.add_post("/files/upload", self._upload)
        app.router.add_get("/files/{file_id}/{name}", self._file)
        base = "/{owner}/{app}/requests/{request_id}"
        app.router.add_get(base + "/status", self._status)
        app.router.add_get(base + "/status/stream", self._stream)
        app.router.add_put(base + "/cancel", self._cancel)
        app.router.add_get(base, self._result)
        payloads.add_route(app, self)  # DELETE /models/requests/{id}/payloads (Platform API)
        app.router.add_post("/{endpoint_id:.+}", self._accept)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        self.url = self._files.base_url = f"http://{host}:{port}"
        if self._keeper is not None:
            self._keeper.start(self.url, self._queue)
        log.info("fal simulator listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        await self._queue.close()
        if self._keeper is not None:
            await self._keeper.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._files.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def fail_next(self, status: int, count: int = 1, *, path_contains: str = "") -> None:
        """The next `count` requests whose path contains `path_contains` answer `status`."""
        self._faults.append(_Fault(status, count, path_contains))

    def local_url(self, url: str) -> str | None:
        """`url` on this simulator's current address when it names one of its files, also one
        an earlier run on the same state directory made (its port may have been another):
        a file that is gone since is then a 404 here, not a dead address."""
        moved = self._files.local_url(url)
        if moved is None and self._keeper is not None and self._keeper.made_here(url):
            parts = urlsplit(url)
            moved = f"{self.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return moved

    def job_state(self, request_id: str) -> str | None:
        job = self._jobs.get(request_id)
        return job.state if job else None

    async def wait_state(self, request_id: str, state: str) -> None:
        """Until the job reaches `state` (or a later one); for tests that act mid-job."""
        job = self._jobs[request_id]
        while STATE_ORDER.index(job.state) < STATE_ORDER.index(state):
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

    def fail_account(self, fault: AccountFault | None) -> None:
        """Answer like fal when the operator's account fails, until called with None:
        "bad_key" refuses every authenticated request with 401; "locked" refuses what
        would be billed (submits, storage) with fal's 403 for an exhausted balance, while
        status, result and cancel still answer, as fal's do."""
        self.account_fault = fault

    async def _set_account_fault(self, request: web.Request) -> web.Response:
        """PUT /_sim/account {"fault": "bad_key" | "locked" | null}: `fail_account` for a
        simulator in another process."""
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        fault = body.get("fault")
        if fault not in (None, *ACCOUNT_FAULTS):
            return _json({"detail": f"fault must be one of {list(ACCOUNT_FAULTS)} or null"}, 422)
        self.fail_account(fault)
        return _json({"fault": fault})

    def _refuse_auth(self, request: web.Request) -> web.Response | None:
        if self.account_fault == "bad_key" or (
                self.account_fault == "locked" and request.method == "POST"):
            return _json(ACCOUNT_FAULTS[self.account_fault], ACCOUNT_FAULT_STATUS[self.account_fault])
        wanted = self.options.api_key
        if wanted and request.headers.get("Authorization") != f"Key {wanted}":
            return _json({"detail": "Invalid or missing API key."}, 401)
        return None

    # ------------------------------------------------------------ queue: submit

    async def _accept(self, request: web.Request) -> web.Response:
        """POST /{endpoint_id}: validate the input as fal would, and queue a job for it."""
        self.requests_by_kind["submit"] += 1
        endpoint_id = request.match_info["endpoint_id"].strip("/")
        try:
            endpoint = by_endpoint_id(endpoint_id, ENDPOINTS)
        except UnknownModel:
            return _json({"detail": f"Application '{endpoint_id}' not found."}, 404)
        refused = self._refuse_auth(request)
        if refused is not None:
            return refused
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            model = endpoint.input_model.model_validate(body)
        except ValidationError as exc:
            return _json({"detail": _validation_detail(exc)}, 422)
        job = self._new_job(request, endpoint, model.model_dump(mode="json"))
        self._queue.add(job)
        self.requests_by_id[job.id] += 1
        self.submitted[job.id] = {
            "endpoint_id": endpoint_id, "input": body,
            "priority": request.headers.get("X-Fal-Queue-Priority", "normal"),
            "timeout": request.headers.get("X-Fal-Request-Timeout"),
            "webhook": request.query.get("fal_webhook"),
        }
        return _json({"request_id": job.id, "status": IN_QUEUE, "queue_position": job.position,
                      **self._urls(job)}, headers={"X-Fal-Request-Id": job.id})

    def _new_job(self, request: web.Request, endpoint: Endpoint, payload: dict[str, Any]) -> SimJob:
        seed = payload.get("seed")
        if not isinstance(seed, int):
            seed = self._rng.randrange(2**31)
        priority = request.headers.get("X-Fal-Queue-Priority", "normal")
        now = time.time()
        job = SimJob(id=str(uuid.uuid4()), endpoint=endpoint, payload=payload, seed=seed,
                     priority=priority if priority in ("normal", "low") else "normal",
                     submitted=now, origin=self.url)
        if self._keeper is not None:
            job.owner = self._keeper.owner
        timeout = request.headers.get("X-Fal-Request-Timeout")
        with contextlib.suppress(ValueError, TypeError):
            if timeout is not None:
                job.start_deadline = now + float(timeout)
        return job

    def _urls(self, job: SimJob) -> dict[str, str]:
        base = f"{self.url}/{job.app_id}/requests/{job.id}"
        return {"response_url": base, "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel"}

    # ------------------------------------------------------------ queue: reading

    def _lookup(self, request: web.Request, kind: str,
                missing: dict[str, Any] | None = None) -> SimJob | web.Response:
        """The preamble every per-request route shares: count it, check auth, find the job."""
        self.requests_by_kind[kind] += 1
        refused = self._refuse_auth(request)
        if refused is not None:
            return refused
        job = self._job_for(request)
        if job is None:
            return _json(missing or {"detail": "Request not found."}, 404)
        return job

    def _job_for(self, request: web.Request) -> SimJob | None:
        request_id = request.match_info["request_id"]
        job = self._jobs.get(request_id)
        if job is None and self._keeper is not None:
            job = self._keeper.find(request_id)  # an earlier run's, or another simulator's
        app_id = f"{request.match_info['owner']}/{request.match_info['app']}"
        # Like fal, a request is only found under its own owner/app.
        if job is None or job.app_id != app_id:
            return None
        return job

    def _status_body(self, job: SimJob, with_logs: bool) -> dict[str, Any]:
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
                if job.state == COMPLETED or self._queue.closing:
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
            pass  # the client went away: nothing left to tell it
        return response

    async def _result(self, request: web.Request) -> web.Response:
        job = self._lookup(request, "result")
        if isinstance(job, web.Response):
            return job
        headers = {"X-Fal-Request-Id": job.id}
        if job.state != COMPLETED:
            return _json({"detail": "Request is still in progress."}, 400, headers)
        assert job.done_at is not None
        if time.time() - job.done_at > self.options.result_ttl_seconds:
            return _json({"detail": "Request not found."}, 404, headers)
        if job.error:
            if job.error_type:
                headers["X-Fal-Error-Type"] = job.error_type
            return _json({"detail": job.error, "error_type": job.error_type},
                         job.result_status, headers)
        result = self._keeper.result(job) if self._keeper is not None else job.result
        return _json(result, 200, headers)

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._lookup(request, "cancel", {"status": "NOT_FOUND"})
        if isinstance(job, web.Response):
            return job
        if self._keeper is not None and self._keeper.mirrored(job):
            self._keeper.ask_cancel(job)  # another simulator runs it: it sees the mark
            return _json({"status": "CANCELLATION_REQUESTED"}, 202)
        answer = self._queue.cancel(job)
        status = {"OK": 200, "CANCELLATION_REQUESTED": 202, "ALREADY_COMPLETED": 400}[answer]
        return _json({"status": answer}, status)

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
        file_id, dest = self._files.new_file("upload")
        name = _safe_name(request.headers.get("X-Fal-File-Name", ""), f"{file_id}.bin")
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            async for chunk in request.content.iter_chunked(256 * 1024):
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        self._files.add(file_id, dest, content_type)
        return _json({"access_url": self._files.url(file_id, name)})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            return _json({"detail": "File not found."}, 404)
        return web.FileResponse(stored.path, headers={"Content-Type": stored.content_type})


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
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="keep requests and files here across restarts (default: in memory)")
    return parser


def options_from_args(args: argparse.Namespace) -> SimOptions:
    return SimOptions(
        queue_seconds=args.queue_seconds, run_seconds=args.run_seconds,
        concurrency=args.concurrency, fail_rate=args.fail_rate,
        drop_stream_rate=args.drop_stream_rate, error_rate=args.error_rate, scale=args.scale,
        seed=args.seed, keepalive_seconds=args.keepalive_seconds,
        result_ttl_seconds=args.result_ttl_seconds, state_dir=args.state_dir,
    )


def how_to_use(url: str) -> str:
    """What `ltx-bot sim` prints: its address, and settings that work exactly as printed
    (a loopback fal_queue_url needs no fal key, and its results are let through)."""
    return (
        f"fal simulator on {url}\n"
        "To use it, put these lines in the bot's config file (no fal key needed; if the "
        "file has a [backend] table already, add the two keys there):\n"
        "\n"
        "[backend]\n"
        f'fal_queue_url = "{url}"\n'
        f'fal_rest_url = "{url}"\n'
        "\n"
        f"or set LTX_BOT__BACKEND__FAL_QUEUE_URL={url} and LTX_BOT__BACKEND__FAL_REST_URL={url}"
    )


async def _serve(sim: Simulator, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    url = await sim.start()
    print(how_to_use(url), flush=True)
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

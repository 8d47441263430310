"""fal queue client: submit, follow, fetch, cancel, upload.

One injected `httpx.AsyncClient` carries every call. Progress is followed on
the status stream (Server-Sent Events), which costs one request per job; when
the stream breaks the client polls with backoff and reopens the stream a few
times, so a flaky proxy degrades to polling instead of to failure.

Secrets: the API key (and the short-lived CDN token) are only ever put in
request headers. Every message this module builds passes through `_redact`, so
even a server that echoes a header back cannot leak one into logs or errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import logging
import random
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import httpx
from httpx_sse import EventSource, SSEError

from bot.config import BackendSettings
from bot.errors import (
    FalError,
    FalRequestFailed,
    FalTransportError,
    FalValidationError,
    ResultExpired,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 502, 503, 504})
# Answers that prove a request was turned away before anything ran: the only ones on
# which a non-idempotent call (a submit) may be sent again without risking a second job.
REFUSED_STATUSES = frozenset({429, 503})
CANCEL_OUTCOMES = ("OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND")
CancelOutcome = Literal["OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]

_UPLOAD_CHUNK = 1024 * 1024
# Refresh the CDN token this long before fal says it expires, so an upload that
# starts just before expiry does not arrive with a dead token.
_TOKEN_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class QueueHandle:
    endpoint_id: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True)
class LogLine:
    message: str
    level: str | None
    timestamp: str | None


@dataclass(frozen=True)
class Queued:
    position: int | None


@dataclass(frozen=True)
class Running:
    logs: list[LogLine]
    progress: float | None  # 0..1


@dataclass(frozen=True)
class Completed:
    inference_time: float | None


@dataclass(frozen=True)
class Failed:
    error_type: str | None
    message: str
    status: int | None


FalEvent = Queued | Running | Completed | Failed


@dataclass
class _CdnToken:
    token: str = field(repr=False)
    token_type: str
    base_url: str
    refresh_at: float  # time.monotonic() after which a new token is fetched


class _StreamUnavailable(Exception):
    """The status stream cannot be used for this request at all (not just broken)."""


# ---------------------------------------------------------------- progress

_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_STEP = re.compile(r"\bstep\s*(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
_FRACTION = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")


def progress_from_message(message: str) -> float | None:
    """A 0..1 fraction from a log line: "45%", "Step 12/40", "step 12 of 40", tqdm's "12/40"."""
    match = _PERCENT.search(message)
    if match:
        return _clamp(float(match.group(1)) / 100.0)
    for pattern in (_STEP, _FRACTION):
        match = pattern.search(message)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            # "2026/11/21" is a date, not progress.
            if total > 0 and done <= total:
                return done / total
    return None


def progress_from_logs(logs: Sequence[LogLine]) -> float | None:
    # The newest line that says anything about progress wins.
    for line in reversed(logs):
        value = progress_from_message(line.message)
        if value is not None:
            return value
    return None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


# ---------------------------------------------------------------- parsing


def _logs_from(data: Mapping[str, Any]) -> list[LogLine]:
    raw = data.get("logs")
    if not isinstance(raw, list):
        return []
    lines: list[LogLine] = []
    for item in raw:
        if isinstance(item, Mapping) and isinstance(item.get("message"), str):
            level = item.get("level")
            stamp = item.get("timestamp")
            lines.append(
                LogLine(
                    message=item["message"],
                    level=level if isinstance(level, str) else None,
                    timestamp=stamp if isinstance(stamp, str) else None,
                )
            )
    return lines


def parse_status(data: Mapping[str, Any], previous_progress: float | None = None) -> FalEvent:
    """One status object (from a poll or a stream line) as an event."""
    status = data.get("status")
    if status == "IN_QUEUE":
        position = data.get("queue_position")
        return Queued(position=position if isinstance(position, int) else None)
    if status == "IN_PROGRESS":
        logs = _logs_from(data)
        progress = progress_from_logs(logs)
        return Running(logs=logs, progress=progress if progress is not None else previous_progress)
    if status == "COMPLETED":
        error = data.get("error")
        error_type = data.get("error_type")
        if error or error_type:
            return Failed(
                error_type=error_type if isinstance(error_type, str) else None,
                message=str(error) if error else "the request failed on fal",
                status=None,
            )
        metrics = data.get("metrics")
        inference = metrics.get("inference_time") if isinstance(metrics, Mapping) else None
        return Completed(
            inference_time=float(inference) if isinstance(inference, int | float) else None
        )
    raise FalError(f"fal sent an unknown request status {str(status)[:40]!r}")


def _is_final(event: FalEvent) -> bool:
    return isinstance(event, Completed | Failed)


def _humanize(name: str) -> str:
    return name.replace("_", " ").strip()


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    # FastAPI prefixes where the value came from; the user only knows field names.
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_message(detail: Any) -> str:
    """Plain-words text for a 422 `detail` (a list of FastAPI errors, or a string)."""
    if isinstance(detail, list):
        problems: list[str] = []
        for item in detail:
            if not isinstance(item, Mapping):
                continue
            loc = item.get("loc")
            path = _field_path(loc) if isinstance(loc, list | tuple) else ""
            msg = str(item.get("msg") or "is not valid").rstrip(".")
            if path:
                leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
                problems.append(f'"{_humanize(leaf)}" ({path}): {msg}')
            else:
                problems.append(msg)
        if problems:
            return "fal did not accept the input: " + "; ".join(problems) + "."
    if isinstance(detail, str) and detail.strip():
        return f"fal did not accept the input: {detail.strip()[:300]}"
    return "fal did not accept the input."


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, _UPLOAD_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _ascii_filename(name: str) -> str:
    # Header values must be latin-1 for httpx; keep it to safe ASCII.
    cleaned = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return cleaned.strip() or "upload.bin"


# ---------------------------------------------------------------- transport


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._release is not None:
                self._release()
                self._release = None


class PoolShards(httpx.AsyncBaseTransport):
    """Connections spread over several small pools.

    httpcore 1.0's pool does bookkeeping quadratic in its connection count on
    every request; following many status streams (one open connection each)
    in one pool makes every other request cost milliseconds of CPU. Each
    request goes to the shard with the fewest responses in flight, so open
    streams spread evenly and every pool stays small.
    """

    def __init__(self, shards: int = 8, *, limits: httpx.Limits | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        limits = limits or httpx.Limits(max_connections=400, max_keepalive_connections=80)
        per = max(1, shards)

        def share(value: int | None) -> int | None:
            return None if value is None else max(1, -(-value // per))

        # One TLS context for all shards: building one loads the CA bundle.
        context = httpx.create_ssl_context(verify=verify) if verify is not False else False
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=context,
                limits=httpx.Limits(
                    max_connections=share(limits.max_connections),
                    max_keepalive_connections=share(limits.max_keepalive_connections),
                    keepalive_expiry=limits.keepalive_expiry,
                ),
            )
            for _ in range(per)
        ]
        self._in_flight = [0] * per

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Responses not yet closed, per shard."""
        return tuple(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1

        def release() -> None:
            self._in_flight[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def new_http_client(*, timeout: float = 30.0, shards: int = 8,
                    limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """An AsyncClient suited to following many jobs at once (see `PoolShards`)."""
    return httpx.AsyncClient(timeout=timeout, transport=PoolShards(shards, limits=limits))


# ---------------------------------------------------------------- the client


class FalClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        key: str | None,
        queue_url: str,
        rest_url: str,
        max_retries: int = 6,
        max_retry_seconds: float = 60.0,
        data_uri_max_bytes: int = 0,
        priority: str = "normal",
        request_timeout: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        poll_interval: float = 0.25,
        max_poll_interval: float = 3.0,
        stream_read_timeout: float = 60.0,
        stream_reconnects: int = 3,
    ) -> None:
        self._http = http
        self._key = key or None
        self.queue_url = queue_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.max_retries = max_retries
        self.max_retry_seconds = max_retry_seconds
        self.data_uri_max_bytes = data_uri_max_bytes
        self.priority = priority
        self.request_timeout = request_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        # Keep-alives arrive every ~15 s, so a read timeout well above that only
        # fires on a stream that has really gone silent.
        self.stream_read_timeout = stream_read_timeout
        self.stream_reconnects = stream_reconnects
        self.request_count = 0
        self._token: _CdnToken | None = None
        self._token_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        http: httpx.AsyncClient,
        settings: BackendSettings,
        *,
        queue_url: str | None = None,
        rest_url: str | None = None,
    ) -> FalClient:
        key = settings.fal_key.get_secret_value() if settings.fal_key is not None else None
        return cls(
            http,
            key=key or None,
            queue_url=queue_url or settings.fal_queue_url,
            rest_url=rest_url or settings.fal_rest_url,
            max_retries=settings.max_retries,
            max_retry_seconds=settings.max_retry_seconds,
            data_uri_max_bytes=settings.data_uri_max_bytes,
            priority=settings.priority,
            request_timeout=settings.request_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"FalClient(queue_url={self.queue_url!r}, key={'set' if self._key else 'none'})"

    # ------------------------------------------------------------ queue

    async def enqueue(
        self,
        endpoint_id: str,
        payload: dict[str, Any],
        *,
        webhook_url: str | None = None,
        priority: str | None = None,
        timeout_seconds: float | None = None,
    ) -> QueueHandle:
        headers: dict[str, str] = {}
        chosen = priority or self.priority
        if chosen:
            headers["X-Fal-Queue-Priority"] = chosen
        if timeout_seconds is not None:
            headers["X-Fal-Request-Timeout"] = f"{float(timeout_seconds):g}"
        params = {"fal_webhook": webhook_url} if webhook_url else None
        response = await self._send(
            "POST",
            f"{self.queue_url}/{endpoint_id.strip('/')}",
            what="submit",
            json_body=payload,
            params=params,
            headers=headers,
            idempotent=False,
        )
        data = _json_or_none(response)
        if not isinstance(data, Mapping) or not isinstance(data.get("request_id"), str):
            raise FalError("fal accepted the job but sent no request id", status=response.status_code)
        built = self.handle_for(endpoint_id, data["request_id"])

        def url(key: str, fallback: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) and value else fallback

        return QueueHandle(
            endpoint_id=endpoint_id,
            request_id=data["request_id"],
            status_url=url("status_url", built.status_url),
            response_url=url("response_url", built.response_url),
            cancel_url=url("cancel_url", built.cancel_url),
        )

    def handle_for(self, endpoint_id: str, request_id: str) -> QueueHandle:
        """Rebuild a handle (after a restart). Queue URLs use only `owner/app`."""
        app_id = "/".join(endpoint_id.strip("/").split("/")[:2])
        base = f"{self.queue_url}/{app_id}/requests/{request_id}"
        return QueueHandle(
            endpoint_id=endpoint_id,
            request_id=request_id,
            status_url=f"{base}/status",
            response_url=base,
            cancel_url=f"{base}/cancel",
        )

    async def status(self, handle: QueueHandle) -> FalEvent:
        return parse_status(await self._status_json(handle))

    async def _status_json(self, handle: QueueHandle) -> Mapping[str, Any]:
        try:
            response = await self._send(
                "GET", handle.status_url, what="status", params={"logs": "1"}
            )
        except FalError as exc:
            # fal forgets requests some time after they end: on resume that means "gone".
            if type(exc) is FalError and exc.status in (404, 410):
                raise ResultExpired(
                    "fal no longer knows this request", status=exc.status
                ) from None
            raise
        data = _json_or_none(response)
        if not isinstance(data, Mapping):
            raise FalError("fal sent a status that is not JSON", status=response.status_code)
        return data

    async def events(self, handle: QueueHandle) -> AsyncGenerator[FalEvent, None]:
        """Status changes until the request is final. Use `contextlib.aclosing` if you may
        stop early, so the stream's connection is released at once."""
        last: FalEvent | None = None
        progress: float | None = None
        use_stream = True
        reconnects = self.stream_reconnects
        delay = self.poll_interval

        def changed(event: FalEvent) -> bool:
            nonlocal last, progress
            if isinstance(event, Running) and event.progress is not None:
                progress = event.progress
            if event == last:
                return False
            last = event
            return True

        while True:
            if use_stream:
                delivered = False
                try:
                    async with contextlib.aclosing(self._stream(handle)) as stream:
                        async for data in stream:
                            delivered = True
                            event = parse_status(data, progress)
                            if changed(event):
                                yield event
                            if _is_final(event):
                                return
                    log.debug("status stream of %s ended before the request did", handle.request_id)
                except _StreamUnavailable:
                    use_stream = False
                except (httpx.TransportError, SSEError, FalTransportError) as exc:
                    log.debug(
                        "status stream of %s broke (%s); polling",
                        handle.request_id,
                        type(exc).__name__,
                    )
                # A stream that never delivered would likely fail again: stop paying for it.
                if not delivered or reconnects <= 0:
                    use_stream = False
                else:
                    reconnects -= 1
            event = parse_status(await self._status_json(handle), progress)
            if changed(event):
                yield event
            if _is_final(event):
                return
            if use_stream:
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.max_poll_interval)

    async def _stream(self, handle: QueueHandle) -> AsyncGenerator[Mapping[str, Any], None]:
        base = self.request_timeout if self.request_timeout is not None else 30.0
        try:
            response = await self._send(
                "GET",
                f"{handle.status_url.rstrip('/')}/stream",
                what="status stream",
                params={"logs": "1"},
                headers={"Accept": "text/event-stream", "Cache-Control": "no-store"},
                stream=True,
                http_timeout=httpx.Timeout(base, read=self.stream_read_timeout),
            )
        except FalTransportError:
            raise
        except FalError as exc:
            raise _StreamUnavailable() from exc
        try:
            source = EventSource(response)
            try:
                source._check_content_type()
            except SSEError as exc:
                raise _StreamUnavailable() from exc
            async for sse in source.aiter_sse():
                if not sse.data:
                    continue
                try:
                    data = json.loads(sse.data)
                except ValueError:
                    continue
                if isinstance(data, Mapping) and "status" in data:
                    yield data
        finally:
            await response.aclose()

    async def result(self, handle: QueueHandle) -> dict[str, Any]:
        try:
            response = await self._send("GET", handle.response_url, what="result")
        except (FalValidationError, FalTransportError):
            raise
        except FalError as exc:
            if exc.status in (404, 410) or "not found" in str(exc).lower():
                raise ResultExpired(
                    "the result is no longer available on fal", status=exc.status
                ) from None
            raise FalRequestFailed(
                str(exc), status=exc.status, error_type=exc.error_type
            ) from None
        data = _json_or_none(response)
        if not isinstance(data, dict):
            raise FalRequestFailed("fal sent a result that is not a JSON object",
                                   status=response.status_code)
        return data

    async def cancel(self, handle: QueueHandle) -> CancelOutcome:
        def outcome_in(response: httpx.Response) -> str | None:
            data = _json_or_none(response)
            if isinstance(data, Mapping) and data.get("status") in CANCEL_OUTCOMES:
                return str(data["status"])
            return None

        # HTTP codes of the outcomes are not documented: trust the body's `status`
        # whatever the code, and fall back on the code only when there is none.
        response = await self._send(
            "PUT",
            handle.cancel_url,
            what="cancel",
            accept=lambda r: outcome_in(r) is not None or r.status_code in (400, 404),
        )
        found = outcome_in(response)
        if found is not None:
            return cast(CancelOutcome, found)
        if response.status_code == 404:
            return "NOT_FOUND"
        if response.status_code == 400:
            return "ALREADY_COMPLETED"
        # Accepted without saying how: keep following the events to learn the end.
        return "CANCELLATION_REQUESTED"

    # ------------------------------------------------------------ storage

    async def upload(self, path: Path, *, content_type: str, filename: str) -> str:
        size = (await asyncio.to_thread(path.stat)).st_size
        if self.data_uri_max_bytes > 0 and size <= self.data_uri_max_bytes:
            data = await asyncio.to_thread(path.read_bytes)
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        for attempt in (1, 2):
            token = await self._cdn_token()
            headers = {
                "Authorization": f"{token.token_type} {token.token}",
                "Content-Type": content_type,
                "X-Fal-File-Name": _ascii_filename(filename),
                "Content-Length": str(size),
            }
            try:
                response = await self._send(
                    "POST",
                    f"{token.base_url.rstrip('/')}/files/upload",
                    what="upload",
                    headers=headers,
                    content_factory=lambda: _file_chunks(path),
                    with_key=False,
                )
            except FalError as exc:
                # A token revoked early: fetch a fresh one once.
                if exc.status in (401, 403) and attempt == 1:
                    self._token = None
                    continue
                raise
            data = _json_or_none(response)
            if isinstance(data, Mapping) and isinstance(data.get("access_url"), str):
                return str(data["access_url"])
            raise FalError("fal storage sent no access_url", status=response.status_code)
        raise FalError("fal storage refused the upload token")  # pragma: no cover

    async def _cdn_token(self) -> _CdnToken:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token.refresh_at:
                return self._token
            response = await self._send(
                "POST",
                f"{self.rest_url}/storage/auth/token",
                what="storage token",
                params={"storage_type": "fal-cdn-v3"},
                json_body={},
            )
            data = _json_or_none(response)
            if not isinstance(data, Mapping) or not all(
                isinstance(data.get(k), str) for k in ("token", "token_type", "base_url")
            ):
                raise FalError("fal storage sent an unusable token", status=response.status_code)
            lifetime = 600.0
            expires = data.get("expires_at")
            if isinstance(expires, str):
                with contextlib.suppress(ValueError):
                    when = datetime.fromisoformat(expires)
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    lifetime = (when - datetime.now(UTC)).total_seconds()
            margin = min(_TOKEN_MARGIN_SECONDS, max(0.0, lifetime) / 10)
            self._token = _CdnToken(
                token=data["token"],
                token_type=data["token_type"],
                base_url=data["base_url"],
                refresh_at=time.monotonic() + lifetime - margin,
            )
            return self._token

    # ------------------------------------------------------------ transport

    def _redact(self, text: str) -> str:
        for secret in (self._key, self._token.token if self._token else None):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def _scrub(self, value: Any) -> Any:
        """`_redact` through a whole parsed body, *before* anything is cut to length:
        truncating first could leave the start of an echoed key behind."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, Mapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    def _timeout_for(
        self, timeout: httpx.Timeout | float | None
    ) -> httpx.Timeout | float | httpx._client.UseClientDefault:
        if timeout is not None:
            return timeout
        if self.request_timeout is not None:
            return self.request_timeout
        return httpx.USE_CLIENT_DEFAULT

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        # Jitter spreads retries of many jobs that failed together.
        return ceiling * random.uniform(0.5, 1.0)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content_factory: Callable[[], AsyncIterator[bytes]] | None = None,
        stream: bool = False,
        http_timeout: httpx.Timeout | float | None = None,
        accept: Callable[[httpx.Response], bool] | None = None,
        with_key: bool = True,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One call with retries. Returns a 2xx/3xx (or `accept`ed) response, raises FalError.

        `idempotent=False` (a submit): sending it again after fal may have taken it would
        queue a second, paid job, so it is retried only when the request provably never
        arrived (no connection) or fal refused it outright (429, 503).
        """
        deadline = time.monotonic() + self.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            request_headers = dict(headers or {})
            if with_key and self._key:
                request_headers["Authorization"] = f"Key {self._key}"
            request = self._http.build_request(
                method,
                url,
                params=params,
                json=json_body if content_factory is None and json_body is not None else None,
                content=content_factory() if content_factory is not None else None,
                headers=request_headers,
                timeout=self._timeout_for(http_timeout),
            )
            self.request_count += 1
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                failure: FalError = FalTransportError(
                    f"could not reach fal for {what} ({type(exc).__name__})",
                    retryable=idempotent or never_sent,
                )
                wait = self._delay(attempt, None)
                if (not failure.retryable or attempt > self.max_retries
                        or time.monotonic() + wait > deadline):
                    raise failure from None
                log.warning(
                    "fal %s: %s; retrying in %.2fs (attempt %d of %d)",
                    what, type(exc).__name__, wait, attempt + 1, self.max_retries + 1,
                )
                await asyncio.sleep(wait)
                continue
            log.debug("fal %s: %s %s -> %d", what, method, request.url.path, response.status_code)
            if response.status_code < 400:
                return response
            if stream:
                await response.aread()
            if accept is not None and accept(response):
                return response
            if response.status_code in (RETRY_STATUSES if idempotent else REFUSED_STATUSES):
                wait = self._delay(attempt, _retry_after(response))
                if attempt <= self.max_retries and time.monotonic() + wait <= deadline:
                    await response.aclose()
                    log.warning(
                        "fal %s: HTTP %d; retrying in %.2fs (attempt %d of %d)",
                        what, response.status_code, wait, attempt + 1, self.max_retries + 1,
                    )
                    await asyncio.sleep(wait)
                    continue
            await response.aclose()
            raise self._error_for(response, what)

    def _error_for(self, response: httpx.Response, what: str) -> FalError:
        status = response.status_code
        body = self._scrub(_json_or_none(response))
        detail: Any = body.get("detail") if isinstance(body, Mapping) else None
        error_type: str | None = None
        if isinstance(body, Mapping) and isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        error_type = error_type or response.headers.get("x-fal-error-type")
        if error_type:
            # A server (or proxy) may put anything here, even an echoed header.
            error_type = self._redact(error_type)[:80]
        if status == 422:
            return FalValidationError(self._redact(validation_message(detail)))
        if isinstance(detail, str):
            said = detail
        elif detail is not None:
            said = json.dumps(detail)
        else:
            said = self._redact(response.text) if body is None else ""
        said = " ".join(said.split())[:300]
        message = f"fal answered HTTP {status} to {what}"
        if error_type:
            message += f" ({error_type})"
        if said:
            message += f": {said}"
        if status in RETRY_STATUSES:
            return FalTransportError(message, status=status, error_type=error_type, retryable=True)
        return FalError(message, status=status, error_type=error_type)

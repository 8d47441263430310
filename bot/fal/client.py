"""fal queue client: enqueue, follow, fetch, cancel, upload.

One injected `httpx.AsyncClient` carries every call (through `Caller`, which adds
the key, retries and redacts). Progress is followed on the status stream
(Server-Sent Events), which costs one request per job; when the stream breaks the
client polls with backoff and reopens the stream a few times, so a flaky proxy
degrades to polling instead of to failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Mapping
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
from bot.fal.retry import Caller, FalAccountError, RetryPolicy, json_or_none
from bot.fal.status import FalEvent, QueueHandle, Running, is_final, parse_status
from bot.fal.upload import Storage

log = logging.getLogger(__name__)

CANCEL_OUTCOMES = ("OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND")
CancelOutcome = Literal["OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]


class _StreamUnavailable(Exception):
    """The status stream cannot be used for this request at all (not just broken)."""


class FalClient:
    """fal's queue and storage for the job runner: enqueue a request, follow its events,
    fetch its result, cancel it, and upload its inputs."""

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
        policy = RetryPolicy(max_retries=max_retries, max_retry_seconds=max_retry_seconds,
                             backoff_base=backoff_base, backoff_max=backoff_max)
        self._calls = Caller(http, key=key, policy=policy, request_timeout=request_timeout)
        self._storage = Storage(self._calls, rest_url=rest_url,
                                data_uri_max_bytes=data_uri_max_bytes)
        self.queue_url = queue_url.rstrip("/")
        self.rest_url = self._storage.rest_url
        self.priority = priority
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        # Keep-alives arrive every ~15 s, so a read timeout well above that only
        # fires on a stream that has really gone silent.
        self.stream_read_timeout = stream_read_timeout
        self.stream_reconnects = stream_reconnects

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
        return f"FalClient(queue_url={self.queue_url!r}, key={'set' if self._calls.has_key else 'none'})"

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._calls.request_count

    @property
    def longest_call_seconds(self) -> float:
        """The longest one call (a submit, say) can take: its retries' time budget plus
        one more request's timeout."""
        timeout = self._calls.request_timeout
        return self._calls.policy.max_retry_seconds + (timeout if timeout is not None else 30.0)

    @property
    def max_retries(self) -> int:
        return self._calls.policy.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self._calls.policy.max_retries = value

    @property
    def data_uri_max_bytes(self) -> int:
        return self._storage.data_uri_max_bytes

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
        response = await self._calls.send(
            "POST",
            f"{self.queue_url}/{endpoint_id.strip('/')}",
            what="submit",
            json_body=payload,
            params=params,
            headers=headers,
            idempotent=False,
        )
        data = json_or_none(response)
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
            response = await self._calls.send(
                "GET", handle.status_url, what="status", params={"logs": "1"}
            )
        except FalError as exc:
            # fal forgets requests some time after they end: on resume that means "gone".
            if type(exc) is FalError and exc.status in (404, 410):
                raise ResultExpired(
                    "fal no longer knows this request", status=exc.status
                ) from None
            raise
        data = json_or_none(response)
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
                            if is_final(event):
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
            if is_final(event):
                return
            if use_stream:
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.max_poll_interval)

    async def _stream(self, handle: QueueHandle) -> AsyncGenerator[Mapping[str, Any], None]:
        base = self._calls.request_timeout if self._calls.request_timeout is not None else 30.0
        try:
            response = await self._calls.send(
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
            response = await self._calls.send("GET", handle.response_url, what="result")
        except (FalValidationError, FalTransportError, FalAccountError):
            raise
        except FalError as exc:
            if exc.status in (404, 410) or "not found" in str(exc).lower():
                raise ResultExpired(
                    "the result is no longer available on fal", status=exc.status
                ) from None
            raise FalRequestFailed(
                str(exc), status=exc.status, error_type=exc.error_type
            ) from None
        data = json_or_none(response)
        if not isinstance(data, dict):
            raise FalRequestFailed("fal sent a result that is not a JSON object",
                                   status=response.status_code)
        return data

    async def cancel(self, handle: QueueHandle) -> CancelOutcome:
        def outcome_in(response: httpx.Response) -> str | None:
            data = json_or_none(response)
            if isinstance(data, Mapping) and data.get("status") in CANCEL_OUTCOMES:
                return str(data["status"])
            return None

        # HTTP codes of the outcomes are not documented: trust the body's `status`
        # whatever the code, and fall back on the code only when there is none.
        response = await self._calls.send(
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

    async def probe(self) -> None:
        """Whether fal accepts the operator's key and account now: raises FalAccountError
        when not (FalError when fal cannot tell). Asks for a storage upload token: it
        needs the key, is refused while the account is locked like a submit is, and
        costs nothing (no file is uploaded, no request is queued)."""
        await self._calls.send("POST", f"{self.rest_url}/storage/auth/token", what="account check",
                               params={"storage_type": "fal-cdn-v3"}, json_body={})

    # ------------------------------------------------------------ storage

    async def upload(self, path: Path, *, content_type: str, filename: str) -> str:
        """A URL fal can read `path` from: a data URI when small enough, else fal's CDN."""
        return await self._storage.upload(path, content_type=content_type, filename=filename)

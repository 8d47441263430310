"""Every HTTP call to fal: the key, timeouts, retries with backoff, and errors in words.

Secrets (the API key, CDN tokens) are only ever put in request headers, and every
message built here passes through `Caller.redact`, so even a server that echoes a
header back cannot leak one into logs or errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bot import metrics, redaction
from bot.errors import FalError, FalTransportError, FalValidationError
from bot.fal.status import validation_message
from bot.redaction import Redactor

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 502, 503, 504})
# The key is wrong or the account is locked (fal answers 403 "User is locked. Reason:
# Exhausted balance ..." when the balance ran out): every request would fail alike.
ACCOUNT_STATUSES = frozenset({401, 403})
# Answers that prove a request was turned away before anything ran: the only ones on
# which a non-idempotent call (a submit) may be sent again without risking a second job.
REFUSED_STATUSES = frozenset({429, 503})


class FalAccountError(FalError):
    """fal refused the operator's key or account (401/403): not this job's fault, and
    every other request would be refused too until the operator acts."""


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (delta seconds or an HTTP date), if it did."""
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


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


@dataclass
class RetryPolicy:
    """How hard one call tries: how many retries, within how long, how far apart."""

    max_retries: int = 6
    max_retry_seconds: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 10.0

    def delay(self, attempt: int, asked: float | None) -> float:
        if asked is not None:
            return asked
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        # Jitter spreads retries of many jobs that failed together.
        return ceiling * random.uniform(0.5, 1.0)

    def allows(self, attempt: int, wait: float, deadline: float) -> bool:
        return attempt <= self.max_retries and time.monotonic() + wait <= deadline


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    what: str  # in messages: "submit", "status", "upload"
    params: Mapping[str, str] | None
    json_body: Any
    headers: Mapping[str, str] | None
    content_factory: Callable[[], AsyncIterator[bytes]] | None
    stream: bool
    timeout: httpx.Timeout | float | None
    accept: Callable[[httpx.Response], bool] | None
    with_key: bool
    idempotent: bool

    @property
    def retry_statuses(self) -> frozenset[int]:
        return RETRY_STATUSES if self.idempotent else REFUSED_STATUSES


class Caller:
    """Sends calls to fal with the key, retries what may be retried, and turns every
    failure into a `FalError` whose text holds no secret."""

    def __init__(self, http: httpx.AsyncClient, *, key: str | None, policy: RetryPolicy,
                 request_timeout: float | None) -> None:
        self._http = http
        self._key = key or None
        self._redact = Redactor([self._key] if self._key else [], marker="[redacted]")
        self.policy = policy
        self.request_timeout = request_timeout
        self.request_count = 0

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def hide(self, secret: str) -> None:
        """Redact `secret` from every message from now on (a CDN token, say), and from every
        log line of this process (`bot.redaction`)."""
        self._redact.update([secret])
        redaction.remember(secret)

    def redact(self, text: str) -> str:
        """`text` without the key or any hidden secret, in any letter case."""
        return self._redact(text)

    def _scrub(self, value: Any) -> Any:
        """`redact` through a whole parsed body, *before* anything is cut to length:
        truncating first could leave the start of an echoed key behind."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    async def send(
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
        call = _Call(method, url, what, params, json_body, headers, content_factory, stream,
                     http_timeout, accept, with_key, idempotent)
        deadline = time.monotonic() + self.policy.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(self._request(call), stream=call.stream)
            except httpx.TransportError as exc:
                wait = self._wait_after_transport_error(call, exc, attempt, deadline)
                reason = type(exc).__name__
            else:
                if await self._answered(call, response):
                    return response
                wait = await self._wait_after_refusal(call, response, attempt, deadline)
                reason = f"HTTP {response.status_code}"
            log.warning("fal %s: %s; retrying in %.2fs (attempt %d of %d)",
                        what, reason, wait, attempt + 1, self.policy.max_retries + 1)
            await asyncio.sleep(wait)

    def _request(self, call: _Call) -> httpx.Request:
        headers = dict(call.headers or {})
        if call.with_key and self._key:
            headers["Authorization"] = f"Key {self._key}"
        self.request_count += 1
        return self._http.build_request(
            call.method,
            call.url,
            params=call.params,
            json=call.json_body if call.content_factory is None else None,
            content=call.content_factory() if call.content_factory is not None else None,
            headers=headers,
            timeout=self._timeout_for(call.timeout),
        )

    def _timeout_for(
        self, timeout: httpx.Timeout | float | None
    ) -> httpx.Timeout | float | httpx._client.UseClientDefault:
        if timeout is not None:
            return timeout
        if self.request_timeout is not None:
            return self.request_timeout
        return httpx.USE_CLIENT_DEFAULT

    def _wait_after_transport_error(self, call: _Call, exc: httpx.TransportError, attempt: int,
                                    deadline: float) -> float:
        """How long to wait before trying again; raises when the call may not be retried."""
        metrics.fal_error(type(exc).__name__)
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        failure = FalTransportError(
            f"could not reach fal for {call.what} ({type(exc).__name__})",
            retryable=call.idempotent or never_sent,
        )
        wait = self.policy.delay(attempt, None)
        if not failure.retryable or not self.policy.allows(attempt, wait, deadline):
            raise failure from None
        return wait

    async def _answered(self, call: _Call, response: httpx.Response) -> bool:
        """True when `response` is the answer to hand back (success, or `accept`ed)."""
        log.debug("fal %s: %s %s -> %d", call.what, call.method, response.request.url.path,
                  response.status_code)
        if response.status_code < 400:
            return True
        if call.stream:
            await response.aread()
        return call.accept is not None and call.accept(response)

    async def _wait_after_refusal(self, call: _Call, response: httpx.Response, attempt: int,
                                  deadline: float) -> float:
        """How long to wait before sending again; raises the error when that may not be."""
        await response.aclose()
        if response.status_code in call.retry_statuses:
            wait = self.policy.delay(attempt, retry_after(response))
            if self.policy.allows(attempt, wait, deadline):
                metrics.fal_error(f"http_{response.status_code}")
                return wait
        error = self._error_for(response, call.what)
        metrics.fal_error(error.error_type or f"http_{response.status_code}")
        raise error

    def _error_for(self, response: httpx.Response, what: str) -> FalError:
        status = response.status_code
        body = self._scrub(json_or_none(response))
        detail: Any = body.get("detail") if isinstance(body, Mapping) else None
        error_type = self._error_type(response, body)
        if status == 422:
            return FalValidationError(self.redact(validation_message(detail)))
        if isinstance(detail, str):
            said = detail
        elif detail is not None:
            said = json.dumps(detail)
        else:
            said = self.redact(response.text) if body is None else ""
        said = " ".join(said.split())[:300]
        message = f"fal answered HTTP {status} to {what}"
        if error_type:
            message += f" ({error_type})"
        if said:
            message += f": {said}"
        if status in ACCOUNT_STATUSES:
            return FalAccountError(message, status=status, error_type=error_type)
        if status in RETRY_STATUSES:
            return FalTransportError(message, status=status, error_type=error_type, retryable=True)
        return FalError(message, status=status, error_type=error_type)

    def _error_type(self, response: httpx.Response, body: Any) -> str | None:
        error_type: str | None = None
        if isinstance(body, Mapping) and isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        error_type = error_type or response.headers.get("x-fal-error-type")
        # A server (or proxy) may put anything here, even an echoed header.
        return self.redact(error_type)[:80] if error_type else None

"""HTTP connections for many jobs at once: one shared client, its pool split in shards."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable

import httpx


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that tells its shard when it is closed."""

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

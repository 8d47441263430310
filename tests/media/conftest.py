"""Fixtures for the media tests: settings on a private temp root, a real file server on
127.0.0.1 (port 0) that records what it was sent, and an httpx client whose real transport
records every request it makes (to prove a refusal happened before any connection)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bot.config import MediaSettings
from tests.media import makers


@pytest.fixture
def media_settings(tmp_path: Path) -> MediaSettings:
    return MediaSettings(tmp_dir=str(tmp_path / "tmp"), download_timeout_seconds=10)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


@dataclass
class FileServer:
    """An aiohttp server with a few canned routes; `hits` records each request."""

    hits: list[Hit] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    # path -> (status, Location); relative or absolute
    redirects: dict[str, tuple[int, str]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    chunked: set[str] = field(default_factory=set)
    gzipped: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.path, dict(request.headers)))
        path = request.path
        if path in self.redirects:
            status, location = self.redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if path in self.statuses:
            return web.Response(status=self.statuses[path], text="no")
        if path == "/hang":
            await self.release.wait()  # a server that never answers (until teardown)
            return web.Response(text="late")
        if path not in self.files:
            return web.Response(status=404, text="missing")
        body = self.files[path]
        if path in self.gzipped:
            return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"},
                                content_type="application/octet-stream")
        if path in self.chunked:
            # No Content-Length: the size cap must hold while streaming.
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(body), 16384):
                await response.write(body[start:start + 16384])
            await response.write_eof()
            return response
        return web.Response(body=body, content_type="application/octet-stream")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server) and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def servers() -> AsyncIterator[Callable[[], Awaitable[FileServer]]]:
    started: list[FileServer] = []

    async def start() -> FileServer:
        server = FileServer()
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def server(servers: Callable[[], Awaitable[FileServer]]) -> FileServer:
    return await servers()


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, noting every URL it is asked to connect to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await super().handle_async_request(request)


@pytest.fixture
async def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
async def http(transport: RecordingTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Videos shared by several tests (made once per session)."""
    root = tmp_path_factory.mktemp("clips")
    yield {
        "mp4": makers.make_video(root / "clip.mp4", "mp4"),
        "mov": makers.make_video(root / "clip.mov", "mov"),
        "webm": makers.make_video(root / "clip.webm", "webm"),
        "frames": makers.make_video(root / "frames.mp4", "mp4", frames=50, gop=12, audio=False),
    }


@pytest.fixture(scope="session")
def noise_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return makers.make_noise_clip(tmp_path_factory.mktemp("noise") / "noise.mp4")

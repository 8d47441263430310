"""Wiring: one long-lived HTTP client, the fal client (or the built-in simulator),
the store, quotas, the job runner and the command core, started and stopped together.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx

from bot import media
from bot.commands import Bot
from bot.config import Settings
from bot.fal import FalClient, new_http_client
from bot.jobs import JobRunner
from bot.ports import ChatPort
from bot.quota import Quota
from bot.sim import SimOptions, Simulator
from bot.store import SqlStore, open_store

log = logging.getLogger(__name__)


def http_client_for(settings: Settings) -> httpx.AsyncClient:
    """The one shared client, sized for the jobs that may be at fal at once.

    Every job at fal holds a status stream open, so the pool needs room for all of
    them plus short calls; and the connections are sharded (about 50 a pool) because
    one httpcore pool does work proportional to its connections squared per request.
    """
    connections = settings.backend.max_concurrent + 200
    return new_http_client(
        timeout=settings.backend.request_timeout_seconds,
        shards=max(8, -(-connections // 50)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=100),
    )


class App:
    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._own_http = http is None
        self.http = http or http_client_for(settings)
        self._ports: list[ChatPort] = []
        self.sim: Simulator | None = None
        self._store: SqlStore | None = None
        self._quota: Quota | None = None
        self._runner: JobRunner | None = None
        self._bot: Bot | None = None
        self._fal: FalClient | None = None
        self.started = False

    # Attributes adapters use once the app has started.
    @property
    def store(self) -> SqlStore:
        assert self._store is not None, "App.start() first"
        return self._store

    @property
    def quota(self) -> Quota:
        assert self._quota is not None, "App.start() first"
        return self._quota

    @property
    def runner(self) -> JobRunner:
        assert self._runner is not None, "App.start() first"
        return self._runner

    @property
    def bot(self) -> Bot:
        assert self._bot is not None, "App.start() first"
        return self._bot

    @property
    def fal(self) -> FalClient:
        assert self._fal is not None, "App.start() first"
        return self._fal

    def register_port(self, port: ChatPort) -> None:
        self._ports.append(port)
        if self._runner is not None:
            self._runner.register_port(port)

    async def start(self) -> None:
        settings = self.settings
        backend = settings.backend
        extra_hosts: list[str] = []
        queue_url, rest_url = backend.fal_queue_url, backend.fal_rest_url
        if settings.uses_simulator:
            self.sim = Simulator(
                SimOptions(
                    queue_seconds=backend.sim_queue_seconds,
                    run_seconds=backend.sim_run_seconds,
                    concurrency=backend.sim_concurrency,
                ),
                host=backend.sim_host,
                port=backend.sim_port,
            )
            queue_url = rest_url = await self.sim.start()
            # Results come from the simulator's own loopback address; let media fetch them.
            # host:port, so user links still cannot reach anything else on loopback.
            parts = urlsplit(queue_url)
            if parts.hostname and parts.port:
                extra_hosts.append(f"{parts.hostname}:{parts.port}")
            reason = ("backend.kind = \"sim\"" if backend.kind == "sim" else "no fal key configured")
            log.warning(
                "Videos are SIMULATED by the built-in simulator at %s (%s; set FAL_KEY for real "
                "LTX generations).",
                queue_url,
                reason,
            )
        else:
            log.info("Backend: fal at %s", queue_url)
        self._fal = FalClient.from_settings(self.http, backend, queue_url=queue_url, rest_url=rest_url)
        self._store = await open_store(settings.database)
        self._quota = Quota(self._store, settings)
        self._runner = JobRunner(
            settings, self._store, self._quota, self._fal, self.http, extra_allowed_hosts=extra_hosts
        )
        for port in self._ports:
            self._runner.register_port(port)
        self._bot = Bot(
            settings, self._store, self._quota, self._runner, self.http, extra_allowed_hosts=extra_hosts
        )
        await self._runner.start()
        self.started = True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()
        if self._store is not None:
            await self._store.close()
        media.release_work_dir(self.settings.media)
        if self._own_http:
            await self.http.aclose()
        if self.sim is not None:
            await self.sim.stop()
        self.started = False

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""Wiring: one long-lived HTTP client, the fal client (or the built-in simulator),
the store, quotas, the job runner and the command core, started and stopped together.
"""

from __future__ import annotations

import logging

import httpx

from bot import media, metrics
from bot.commands import Bot
from bot.config import Settings
from bot.config.sections import DEFAULT_FAL_QUEUE_URL, DEFAULT_FAL_REST_URL
from bot.fal import FalClient, new_http_client
from bot.jobs import JobRunner
from bot.ports import AdminNotices, ChatPort, Invocation
from bot.quota import Quota
from bot.retention import Retention
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
    """The core, wired: what every adapter is handed and what `ltx-bot` starts and stops.

    It is also the adapters' `bot.ports.Core`: `handle` reaches the command core, which
    exists only once the app has started, so an adapter may be built (and its port
    registered) before `start()`.
    """

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
        self.metrics: metrics.Endpoint | None = None
        self.started = False
        self.retention: Retention | None = None

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

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        await self.bot.handle(inv, port)

    async def first_seen(self, event_id: str) -> bool:
        return await self.bot.first_seen(event_id)

    def register_port(self, port: ChatPort) -> None:
        self._ports.append(port)
        if self._runner is not None:
            self._runner.register_port(port)

    async def notify_admins(self, text: str) -> int:
        """Tell the operator admins `text` once through every port that can (`AdminNotices`);
        how many were told. A port that fails is logged and does not stop the others."""
        told = 0
        seen: set[int] = set()
        for port in self._ports:
            if not isinstance(port, AdminNotices) or id(port) in seen:
                continue
            seen.add(id(port))
            try:
                told += await port.notify_admins(text)
            except Exception:
                log.warning("the %s admins could not be told: %s", port.platform, text,
                            exc_info=True)
        if not told:
            log.warning("no admin could be told in chat (set the admins or an admin channel "
                        "of a platform): %s", text)
        return told

    async def _notice(self, text: str) -> None:
        await self.notify_admins(text)

    async def _start_backend(self) -> tuple[str, str]:
        """Start the built-in simulator when the settings choose it; returns the (queue,
        storage) base URLs the fal client talks to."""
        backend = self.settings.backend
        if not self.settings.uses_simulator:
            if backend.local_server and not backend.has_key:
                log.info("Backend: the fal-compatible server at %s (loopback: no key needed)",
                         backend.fal_queue_url)
            else:
                log.info("Backend: fal at %s", backend.fal_queue_url)
            return backend.fal_queue_url, backend.fal_rest_url
        self.sim = Simulator(
            SimOptions(
                queue_seconds=backend.sim_queue_seconds,
                run_seconds=backend.sim_run_seconds,
                concurrency=backend.sim_concurrency,
                # Kept across restarts: unfinished jobs resume, and follow-ups of a finished
                # job find its video.
                state_dir=self.settings.data_dir / "sim",
            ),
            host=backend.sim_host,
            port=backend.sim_port,
        )
        url = await self.sim.start()
        reason = ("backend.kind = \"sim\"" if backend.kind == "sim" else "no fal key configured")
        log.warning(
            "Videos are SIMULATED by the built-in simulator at %s (%s; set FAL_KEY for real "
            "LTX generations).",
            url,
            reason,
        )
        return url, url

    async def start(self) -> None:
        settings = self.settings
        backend = settings.backend
        queue_url, rest_url = await self._start_backend()
        self._fal = FalClient.from_settings(self.http, backend, queue_url=queue_url, rest_url=rest_url)
        self._store = await open_store(settings.database)
        self._quota = Quota(self._store, settings)
        # The backend's own results and stored files come from its address, loopback or
        # private as it may be; only that host:port is let through, not the whole network.
        trusted = media.backend_hosts((queue_url, rest_url),
                                      except_urls=(DEFAULT_FAL_QUEUE_URL, DEFAULT_FAL_REST_URL))
        fetcher = media.Fetcher(self.http, settings.media, trusted,
                                rebase=self.sim.local_url if self.sim is not None else None)
        self._runner = JobRunner(settings, self._store, self._quota, self._fal, self.http, fetcher=fetcher)
        for port in self._ports:
            self._runner.register_port(port)
        # The fal account failing and budget alerts with no moderation log reach the admins
        # in chat too, not only the ERROR log (bot.pause, bot.community.moderation).
        self._runner.pauses.notice = self._notice
        self._bot = Bot(settings, self._store, self._quota, self._runner, fetcher=fetcher)
        await self._runner.start()
        self.retention = Retention(self._store, settings)  # [privacy] retention_days
        self.retention.start()
        self.metrics = metrics.serve(settings, self._store, self._runner.hooks)
        self.started = True

    async def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self.retention is not None:
            await self.retention.stop()
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

"""`[privacy] retention_days`: once a day, the prompts, fal input and result JSON,
result links, message references and saved files of finished jobs older than that
are purged. The amounts, model, sizes and times stay, so usage reports and the
ledger are unchanged. 0 (the default) keeps everything.

One task per process runs `purge_once` now and then every `interval` seconds; the
purge is idempotent, so several processes on one store may each run it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.privacy.compact import compact
from bot.privacy.files import remove_files
from bot.store import Clock, SqlStore, SqlTx, utc_now
from bot.store.privacy import expired_jobs, purge_jobs
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0


class Retention:
    """The daily purge; `clock` is injectable so a test can move time."""

    def __init__(self, store: SqlStore, settings: Settings, *, clock: Clock = utc_now,
                 interval: float = DAY_SECONDS) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.turns = 0  # purges the task has run (tests await `turned`)
        self.turned = asyncio.Event()

    @property
    def days(self) -> int:
        return self.settings.privacy.retention_days

    async def purge_once(self) -> int:
        """Purge what is older than `retention_days`; returns how many jobs were purged."""
        if self.days <= 0:
            return 0
        now = self.clock()
        horizon = now - timedelta(days=self.days)

        def purge(tx: SqlTx) -> tuple[int, list[str]]:
            jobs = expired_jobs(tx, horizon)
            files = [ref.saved_path for job in jobs
                     for ref in (job.result_message, job.status_message)
                     if ref is not None and ref.saved_path]
            return purge_jobs(tx, [job.id for job in jobs], now), files

        purged, files = await self.store.run(purge)
        if not purged:
            return 0
        removed = await asyncio.to_thread(remove_files, [Path(f) for f in files])
        url = self.settings.database.url
        done = await compact(self.store, url.get_secret_value() if url else None)
        log.info("retention: purged %d job(s) older than %d days, %d file(s) removed (%s)",
                 purged, self.days, removed, done)
        return purged

    def start(self) -> None:
        if self.days > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self.purge_once()
            except Exception:  # a failed purge is retried at the next turn, never fatal
                log.warning("retention purge failed; trying again in %gs", self.interval,
                            exc_info=True)
            self.turns += 1
            self.turned.set()
            await asyncio.sleep(self.interval)

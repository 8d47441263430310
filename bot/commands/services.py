"""What every command handler works with, and the shape of a handler."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.config import Settings
from bot.errors import NotFound, UsageError
from bot.jobs import JobRunner
from bot.media import Fetcher
from bot.model import JobRecord
from bot.ports import ChatPort, Invocation
from bot.quota import Quota
from bot.store import Store


@dataclass(frozen=True)
class Services:
    """The bot's long-lived parts, shared by every command: one set per `Bot`."""

    settings: Settings
    store: Store
    quota: Quota
    runner: JobRunner
    fetcher: Fetcher  # downloads under the SSRF guard (and the hosts it also allows)

    async def job(self, job_id: int) -> JobRecord:
        job = await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        return job


# A command: runs it and returns the note to tell the user, or None when the job's own
# card is the answer. A `UserError` it raises is told to the user as it is.
Handler = Callable[[Services, Invocation, ChatPort], Awaitable[str | None]]


def job_id_of(inv: Invocation) -> int:
    """The job a command or button is about: its `job_id` option, or the first number in its text."""
    raw = inv.options.get("job_id")
    if raw is None:
        match = re.search(r"\d+", inv.text or "")
        if not match:
            raise UsageError("Which job? Give its number, e.g. cancel 12 (see jobs for yours).")
        raw = match.group(0)
    try:
        return int(str(raw).lstrip("#"))
    except ValueError:
        raise UsageError(f"{raw!r} is not a job number.") from None

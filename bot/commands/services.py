"""What every command handler works with, and the shape of a handler."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.config import Settings
from bot.errors import NotFound, UsageError
from bot.grammar import shorten
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


# Job ids are SQLite INTEGERs: a number past 64 bits can name no job (and would overflow).
MAX_JOB_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
_WHOLE = re.compile(r"[+-]?[0-9]+")


def job_id_of(inv: Invocation) -> int:
    """The job a command or button is about: its `job_id` option, else the first word of its
    text (`12` or `#12`). Anything else is refused, never guessed at: `-1` is not job 1."""
    raw = inv.options.get("job_id")
    if raw is None:
        words = (inv.text or "").split(maxsplit=1)
        if not words:
            raise UsageError("Which job? Give its number, e.g. cancel 12 (see jobs for yours).")
        raw = words[0]
    return job_number(raw)


def job_number(raw: object) -> int:
    """A job id from a typed option (an int) or a word, bounded to what a job id can be."""
    text = str(raw).strip().removeprefix("#")
    if isinstance(raw, bool) or not _DIGITS.fullmatch(text):
        raise UsageError(f"{shorten(str(raw))!r} is not a job number; give its number, "
                         "e.g. cancel 12 (see jobs for yours).")
    # More digits than any 64-bit id has: refused without converting a huge number.
    if len(text.lstrip("0")) > 19 or not 1 <= int(text) <= MAX_JOB_ID:
        raise NotFound(f"There is no job #{shorten(text)}.")
    return int(text)


def whole_number(raw: object, what: str, low: int, high: int, why: str = "") -> int:
    """`raw` as an int between `low` and `high`, or a refusal that says the range (and `why`)."""
    text = str(raw).strip()
    if isinstance(raw, bool) or not _WHOLE.fullmatch(text):
        raise UsageError(f"{what} must be a whole number, not {shorten(text)!r}.")
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19 or not low <= int(text) <= high:
        raise UsageError(f"{what} must be between {low:,} and {high:,}{why}; got {shorten(text)}.")
    return int(text)

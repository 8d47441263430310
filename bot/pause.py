"""Pausing video generation: one concept for the bot's own pause (fal refused the
operator's key or account) and an admin's (`admin pause`).

A pause has a scope ("*" = everywhere, or one workspace key as the store writes it,
`platform:workspace`), a kind (`fal_account`: set by the bot, lifted by a probe that
succeeds; `admin`: set and lifted by an admin), a reason, who set it and since when.
Pauses live in the store (`bot.store.pauses`), so every process sharing it sees them.

While a pause applies to a place: new generation commands there are refused before
anything is downloaded or charged; jobs already waiting stay waiting; a job fal refused
for the account goes back to waiting. Nothing is failed. Under a fal-account pause each
job not at fal yet gives its reserved credits back and reserves them again when the
pause ends (bot/jobs/paused.py); under an admin's pause they stay reserved (a cancel
refunds them). `admin resume` lifts both kinds (a fal_account pause is
set again by the next job or probe that fal still refuses).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.errors import FalError, PermissionDenied, UserError
from bot.ports import Place, User
from bot.store import Store, workspace_key_of
from bot.store.pauses import EVERYWHERE, PauseRow
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Pause = PauseRow
FAL_ACCOUNT = "fal_account"
ADMIN = "admin"
KINDS = (FAL_ACCOUNT, ADMIN)
ACCOUNT_TEXT = "Video generation is paused: the operator's fal account needs attention."
ADMIN_TEXT = "Video generation is paused by an admin"
WAITING_TEXT = "Paused: the job waits until generation resumes"
# A fal-account pause gave the job's credits back (bot/jobs/paused.py).
RETURNED_TEXT = ("Paused: the job waits until generation resumes; its credits are returned "
                 "to you until then")
# How often a process asks fal again whether the account works (one cheap request).
PROBE_SECONDS = 60.0
# Many waiting jobs ask whether a pause applies; one store read a second serves them all.
# Pauses set or lifted in this process are seen at once, other processes' within this.
CACHE_SECONDS = 1.0

Notice = Callable[[str], Awaitable[None]]


class Paused(UserError):
    """A generation refused because a pause applies: nothing was downloaded or charged."""


def may_pause(user: User, scope: str) -> bool:
    """Who may set or lift a pause of `scope`: the bot's operator admins, everywhere; a
    server's own admins, that server only (`scope` is then the workspace the command came
    from: `User.is_workspace_admin` speaks of that one)."""
    return user.is_admin or (user.is_workspace_admin and scope != EVERYWHERE)


def check_may_pause(user: User, scope: str) -> None:
    if not may_pause(user, scope):
        raise PermissionDenied("Only the bot's admins (or a server's own admins, for their "
                               "server) can pause or resume video generation.")


def scopes_of(place: Place | None) -> list[str]:
    """The pause scopes that apply to a place: everywhere, and its workspace."""
    key = workspace_key_of(place) if place is not None else None
    return [EVERYWHERE, key] if key else [EVERYWHERE]


def describe(pause: Pause, *, for_admin: bool = False) -> str:
    """What a user (or, in more detail, an admin) reads about a pause."""
    if pause.kind == FAL_ACCOUNT:
        text = ACCOUNT_TEXT
        if for_admin:
            text += (f" fal said: {pause.reason} (since {_when(pause.since)}). Fix the key or "
                     "the balance; the bot resumes by itself within a minute, or run `admin resume`.")
        return text
    reason = f": {pause.reason}" if pause.reason else ""
    text = f"{ADMIN_TEXT}{reason}."
    if for_admin:
        text += f" Set by {pause.by} at {_when(pause.since)}; `admin resume` lifts it."
    return text


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class Pauses:
    """The pause state for one process: asks the store, sets and lifts pauses, tells the
    operator once about an account failure, and probes fal while the account is paused."""

    def __init__(self, store: Store, probe: Callable[[], Awaitable[None]], *,
                 probe_seconds: float = PROBE_SECONDS, notice: Notice | None = None) -> None:
        self.store = store
        self.probe = probe
        self.probe_seconds = probe_seconds
        self.notice = notice  # also tells the admins where a platform can (None: log only)
        self._task: asyncio.Task[None] | None = None
        self._cache: dict[tuple[str, ...], tuple[float, list[Pause]]] = {}

    async def active(self, place: Place | None = None) -> list[Pause]:
        """The pauses that apply to `place` (to everywhere when None)."""
        scopes = tuple(scopes_of(place))
        cached = self._cache.get(scopes)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        found = await self.store.pauses(scopes)
        self._cache[scopes] = (now, found)
        return found

    async def refuse(self, user: User, place: Place) -> None:
        """Raise `Paused` when a pause applies to `place`."""
        found = await self.active(place)
        if found:
            raise Paused(" ".join(describe(p, for_admin=user.is_admin) for p in found[:1]))

    async def pause(self, scope: str, kind: str, reason: str, by: str) -> bool:
        """Set a pause; False when that scope already had one of this kind."""
        row = Pause(scope=scope, kind=kind, reason=reason, by=by, since=datetime.now(UTC))
        self._cache.clear()
        return await self.store.set_pause(row)

    async def resume(self, scope: str = EVERYWHERE) -> int:
        """Lift every pause of `scope` (both kinds); how many there were."""
        self._cache.clear()
        return await self.store.clear_pauses(scope, KINDS)

    async def account_failed(self, exc: FalError, job_id: int | None = None) -> None:
        """fal refused the key or the account: pause everywhere, and tell the operator the
        first time (in any process sharing the store)."""
        reason = str(exc)
        if not await self.pause(EVERYWHERE, FAL_ACCOUNT, reason, "fal"):
            return
        where = f" (job {job_id} waits)" if job_id is not None else ""
        log.error("fal refused the operator's key or account%s: %s. Video generation is paused "
                  "until a check succeeds (every %g s) or an admin runs `admin resume`.",
                  where, reason, self.probe_seconds)
        if self.notice is not None:
            try:
                await self.notice(f"{ACCOUNT_TEXT} fal said: {reason}")
            except Exception:
                log.warning("the admins could not be told about the pause", exc_info=True)

    # ------------------------------------------------------------ the probe

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._probe_loop(), name="fal-account-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_seconds)
            try:
                await self.probe_once()
            except Exception:
                log.warning("checking the paused fal account failed", exc_info=True)

    async def probe_once(self) -> bool:
        """When the account is paused, ask fal once; lift the pause when fal accepts.
        True when generation may go on (no account pause now)."""
        if not any(p.kind == FAL_ACCOUNT for p in await self.store.pauses([EVERYWHERE])):
            return True
        try:
            await self.probe()
        except FalError as exc:
            log.info("fal still refuses the account: %s", exc)
            return False
        self._cache.clear()
        if await self.store.clear_pauses(EVERYWHERE, [FAL_ACCOUNT]):
            log.warning("fal accepts the operator's account again: video generation resumes")
        return True

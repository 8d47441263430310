"""The one latest-wins edit throttle for status cards.

A job's card changes far more often than a platform lets a bot edit one
message (chat platforms allow about one edit every 3 s). The throttle keeps only
the newest card, sends it at most once per interval, and always sends the
final card, after any edit in flight and never overtaken by a late one. The
ports only retry and re-post; they never queue or drop cards themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from bot.ports import PlatformTraits

log = logging.getLogger(__name__)

T = TypeVar("T")

# A failed edit is tried again (when nothing newer came) a few times, each
# wait longer: a 429 storm or a 5xx passes; a message that refuses for good
# stops costing calls until the card changes again.
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 30.0

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


def edit_interval(configured: float, traits: PlatformTraits) -> float:
    """Seconds between two edits of one message: the operator's setting, never below the
    platform's floor."""
    return max(configured, traits.min_edit_seconds)


class EditThrottle(Generic[T]):
    """Latest-wins edits of one message: `update` keeps the newest card and sends it within
    `interval` seconds of the last send; `finish` sends the final card and ends the throttle.

    `send` may raise: a card that cannot be shown must never stop what it reports on, so
    the failure is logged and the newest card tried again later. `spawn` starts the
    background sender (the owner may track the task to cancel it on shutdown).
    """

    def __init__(
        self,
        send: Callable[[T], Awaitable[None]],
        interval: float,
        *,
        label: str = "status card",
        spawn: Spawn = asyncio.create_task,
        clock: Callable[[], float] = time.monotonic,
        first_retry_seconds: float = 0.25,
    ) -> None:
        self.interval = interval
        self.label = label
        self.first_retry_seconds = first_retry_seconds  # each further retry waits twice as long
        self._send = send
        self._spawn = spawn
        self._clock = clock
        self._lock = asyncio.Lock()  # held while a card is being sent
        self._pending: T | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = -math.inf
        self._failures = 0
        self.finished = False

    def sent(self) -> None:
        """Note a send made elsewhere (the first post of the message): the next waits its turn."""
        self._last = self._clock()

    def update(self, card: T) -> None:
        """Show `card` soon: it replaces any card still waiting. Ignored once finished."""
        if self.finished:
            return
        self._pending = card
        if self._task is None or self._task.done():
            self._task = self._spawn(self._run())

    async def finish(self, card: T) -> None:
        """Send the final card now: it supersedes what waits, follows an edit in flight,
        and nothing sent through this throttle comes after it."""
        self.finished = True
        self._pending = None
        task = self._task
        if task is not None and not task.done() and not self._lock.locked():
            task.cancel()  # it is only waiting for its turn
        async with self._lock:
            await self._deliver(card)

    async def _run(self) -> None:
        while self._pending is not None and not self.finished:
            delay = self._last + self._wait() - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)  # the platform's pace, not a wait for an event
            async with self._lock:
                card, self._pending = self._pending, None
                if card is None or self.finished:
                    return
                shown = await self._deliver(card)
            if shown:
                self._failures = 0
            elif self._pending is None and self._failures < MAX_RETRIES:
                self._failures += 1
                self._pending = card  # nothing newer arrived: this is still the card to show

    def _wait(self) -> float:
        if not self._failures:
            return self.interval
        backoff = min(self.first_retry_seconds * 2.0 ** (self._failures - 1), MAX_BACKOFF_SECONDS)
        return max(self.interval, backoff)

    async def _deliver(self, card: T) -> bool:
        try:
            await self._send(card)
        except Exception:
            # The card is a view of the job, not the job: log and carry on (the next
            # card, or a retry of this one, shows the state again).
            log.warning("%s: edit failed", self.label, exc_info=True)
            return False
        finally:
            self._last = self._clock()
        return True

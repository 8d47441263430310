"""The one edit throttle (bot.throttle) on its own: latest wins, one send per interval,
the final card always last."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from bot.ports import PlatformTraits
from bot.throttle import MAX_RETRIES, EditThrottle, edit_interval


class Recorder:
    """A send target that records (card, monotonic time) and can be made to fail or stall."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []
        self.failures = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.changed = asyncio.Event()

    async def __call__(self, card: str) -> None:
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            self._changed()
            raise RuntimeError(f"refused {card}")
        self.sent.append((card, time.monotonic()))
        self._changed()

    def _changed(self) -> None:
        old, self.changed = self.changed, asyncio.Event()
        old.set()

    async def until(self, cards: list[str], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while [c for c, _ in self.sent] != cards:
                await self.changed.wait()

    def cards(self) -> list[str]:
        return [card for card, _ in self.sent]


def test_the_interval_is_the_setting_never_below_the_platform_floor() -> None:
    assert edit_interval(0.0, PlatformTraits(min_edit_seconds=3.0)) == 3.0
    assert edit_interval(5.0, PlatformTraits(min_edit_seconds=3.0)) == 5.0
    assert edit_interval(0.3, PlatformTraits()) == 0.3


async def test_updates_are_coalesced_to_the_newest_one_per_interval() -> None:
    send = Recorder()
    throttle: EditThrottle[str] = EditThrottle(send, 0.2)
    throttle.sent()  # the message was just posted: the first edit waits its turn
    posted = time.monotonic()
    for i in range(10):
        throttle.update(f"step {i}")
    await send.until(["step 9"])
    assert send.sent[0][1] - posted >= 0.2 - 0.01
    throttle.update("step 10")
    throttle.update("step 11")
    await send.until(["step 9", "step 11"])
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(send.sent)]
    assert all(gap >= 0.2 - 0.01 for gap in gaps), gaps


async def test_the_final_card_supersedes_what_waits_and_nothing_comes_after_it() -> None:
    send = Recorder()
    throttle: EditThrottle[str] = EditThrottle(send, 3600)
    throttle.sent()
    for i in range(5):
        throttle.update(f"step {i}")
    await throttle.finish("done")  # at once, not after the hour
    assert send.cards() == ["done"]
    throttle.update("late progress")  # a late update never overwrites the final state
    await asyncio.sleep(0)
    assert send.cards() == ["done"] and throttle.finished


async def test_the_final_card_follows_an_edit_in_flight() -> None:
    send = Recorder()
    send.gate = asyncio.Event()
    throttle: EditThrottle[str] = EditThrottle(send, 0.0)
    throttle.update("running")
    await send.started.wait()  # "running" is being sent and stalls
    final = asyncio.create_task(throttle.finish("done"))
    await asyncio.sleep(0.01)
    assert not final.done()
    send.gate.set()
    await final
    assert send.cards() == ["running", "done"]


async def test_a_failed_edit_is_logged_and_retried_with_the_newest_card(
    caplog: pytest.LogCaptureFixture,
) -> None:
    send = Recorder()
    send.failures = 2
    throttle: EditThrottle[str] = EditThrottle(send, 0.0, label="job 7: status card",
                                               first_retry_seconds=0.01)
    with caplog.at_level(logging.WARNING, logger="bot.throttle"):
        throttle.update("queued")
        await send.until(["queued"])
    failures = [r for r in caplog.records if "job 7: status card" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)


async def test_a_card_that_keeps_failing_is_given_up_until_the_next_change() -> None:
    send = Recorder()
    send.failures = 100
    throttle: EditThrottle[str] = EditThrottle(send, 0.0, first_retry_seconds=0.001)
    throttle.update("queued")
    async with asyncio.timeout(30):
        while send.failures > 100 - (MAX_RETRIES + 1):
            await send.changed.wait()
    # Proving that nothing more happens takes a little time: far longer than the backoff.
    await asyncio.sleep(0.2)
    assert send.failures == 100 - (MAX_RETRIES + 1)  # one try and MAX_RETRIES retries
    send.failures = 0
    throttle.update("running")
    await send.until(["running"])

"""Stopping a background task (a probe loop, the heartbeat, a purge): one way, everywhere."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` (None: nothing) and wait until it has ended, so nothing of it runs
    after its owner stopped; the CancelledError it ends with is the expected ending."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

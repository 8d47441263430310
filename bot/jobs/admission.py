"""The local admission queue: at most `backend.max_concurrent` jobs at fal at once.

The rest wait in the bot's own line, in order, and each is told its place
(1 = next) whenever the line moves.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable


class Admission:
    """A FIFO of jobs waiting for one of `slots` places at fal.

    A job holds its slot from admission until its result is fetched (or it ends).
    Jobs resumed while already at fal `hold` a slot even beyond the limit: they
    are at fal whether or not we count them.
    """

    def __init__(self, slots: int, on_moved: Callable[[dict[int, int]], None]) -> None:
        self.slots = slots
        self._held: set[int] = set()
        self._queue: OrderedDict[int, asyncio.Future[None]] = OrderedDict()
        self._on_moved = on_moved

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def enqueue(self, job_id: int) -> int:
        """Join the line; 0 means admitted at once, else the 1-based position."""
        if job_id in self._held:
            return 0
        if job_id in self._queue:
            return self.position(job_id) or 0
        if not self._queue and len(self._held) < self.slots:
            self._held.add(job_id)
            return 0
        self._queue[job_id] = asyncio.get_running_loop().create_future()
        return len(self._queue)

    def hold(self, job_id: int) -> None:
        self._queue.pop(job_id, None)
        self._held.add(job_id)

    def position(self, job_id: int) -> int | None:
        for index, queued in enumerate(self._queue, start=1):
            if queued == job_id:
                return index
        return None

    async def wait_for_slot(self, job_id: int) -> None:
        """Until `job_id` holds a slot (at once when it is not in the line)."""
        future = self._queue.get(job_id)
        if future is None:
            return
        try:
            await future
        except asyncio.CancelledError:
            if job_id in self._held:
                # The slot was granted just as the waiter was cancelled: pass it on.
                self.release(job_id)
            elif self._queue.pop(job_id, None) is not None:
                self._moved()
            raise

    def release(self, job_id: int) -> None:
        if job_id in self._queue:
            self._queue.pop(job_id)
            self._moved()
            return
        if job_id not in self._held:
            return
        self._held.discard(job_id)
        granted = False
        while self._queue and len(self._held) < self.slots:
            next_id, future = self._queue.popitem(last=False)
            if future.done():
                continue
            self._held.add(next_id)
            future.set_result(None)
            granted = True
        if granted:
            self._moved()

    def _moved(self) -> None:
        self._on_moved({job_id: index for index, job_id in enumerate(self._queue, start=1)})

"""What the job benchmarks share: a chat port that only counts, and latency summaries.

bench/jobs.py (one process) and bench/scale.py (several processes on one store) both
hand their jobs to `BenchPort` and report latencies through `latency_ms`, so their
figures mean the same thing.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import time
from pathlib import Path

from bot.ports import MessageRef, Place, PlatformTraits, StatusCard, User

# Large enough that no bench video is ever fitted down: the benches measure the bot.
UPLOAD_LIMIT = 100 * 1024 * 1024


class BenchPort:
    """A chat port that keeps no file bytes: it counts posts, edits and notes to users,
    and records when each job's video (or poster) was handed to it (`perf_counter`,
    shared by every process on Linux), every time, so a duplicate delivery shows."""

    platform = "console"
    traits = PlatformTraits()

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.posts = 0
        self.edits = 0
        self.told = 0
        self.sent: dict[int, list[float]] = {}  # job id -> when each send happened

    @property
    def handed(self) -> dict[int, float]:
        """job id -> when its first video reached the port."""
        return {job_id: times[0] for job_id, times in self.sent.items()}

    def _ref(self, place: Place) -> MessageRef:
        # Unique across the processes of one bench run.
        return MessageRef(platform=self.platform, channel=place.channel,
                          id=f"{os.getpid()}-{next(self._ids)}")

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        self.posts += 1
        return self._ref(place)

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        self.edits += 1
        return ref

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        assert card.job_id is not None
        self.sent.setdefault(card.job_id, []).append(time.perf_counter())
        return self._ref(place)

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self.send_video(place, path, card)

    async def delete(self, ref: MessageRef) -> None:
        return None

    def upload_limit(self, place: Place) -> int:
        return UPLOAD_LIMIT

    async def tell(self, user: User, place: Place, text: str) -> None:
        self.told += 1


def latency_ms(values_ms: list[float]) -> dict[str, float | None]:
    """p50, p99 (nearest rank: the value below which 99% of the samples lie) and max."""
    if not values_ms:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values_ms)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 2), "p99": round(p99, 2),
            "max": round(ordered[-1], 2)}

"""The cycle collector of a process running jobs (bot/jobs/collector.py).

Its effect is speed (a full collection walking every object of the process stalls every
job meanwhile), shown by bench/jobs.py; these check the set-up that gives it.
"""

from __future__ import annotations

import gc

from bot.jobs.collector import FULL_COLLECTION_EVERY, settle_collector
from tests.jobs.conftest import Jobs


async def test_a_started_runner_freezes_the_long_lived_objects(jobs: Jobs) -> None:
    # What existed when the first runner started is never walked by a collection again.
    assert gc.get_freeze_count() > 0


async def test_a_started_runner_makes_full_collections_rarer(jobs: Jobs) -> None:
    young, middle, full = gc.get_threshold()
    assert full >= FULL_COLLECTION_EVERY > 10  # Python's default is 10
    assert young > 0 and middle > 0  # the younger generations still collect


async def test_the_collector_is_settled_once_per_process(jobs: Jobs) -> None:
    frozen = gc.get_freeze_count()
    assert settle_collector() is False  # the runner's start did it already
    assert gc.get_freeze_count() == frozen

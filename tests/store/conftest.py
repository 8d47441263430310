"""Fixtures for the store and quota tests: a real SQLite file and a clock we move by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import catalog
from bot.config import QuotaSettings, Settings
from bot.model import GenerationRequest
from bot.ports import Place, User
from bot.quota import Quota
from bot.store import SqliteStore, open_store


@dataclass
class ManualClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_request(credits: int, *, endpoint_key: str = "ltx-13b", prompt: str = "a cat") -> GenerationRequest:
    endpoint = catalog.by_name(endpoint_key)
    est = catalog.Estimate(usd=credits / 100, credits=credits, width=1280, height=720, frames=121)
    return GenerationRequest(endpoint=endpoint, input={"prompt": prompt}, estimate=est, prompt=prompt)


def make_settings(path: Path, **quota: object) -> Settings:
    base = {"daily_credits": 200, "monthly_credits": 2000, "max_concurrent_jobs": 2,
            "cooldown_seconds": 0.0}
    base.update(quota)
    return Settings.model_validate({"database": {"path": str(path)}, "quota": QuotaSettings.model_validate(base).model_dump()})


ALICE = User(platform="discord", id="1001", name="alice", roles=("member",))
BOB = User(platform="discord", id="1002", name="bob")
ADMIN = User(platform="discord", id="1", name="root", is_admin=True)
GUILD = Place(platform="discord", channel="c1", workspace="g1")
OTHER_GUILD = Place(platform="discord", channel="c9", workspace="g2")
DM = Place(platform="discord", channel="dm1")


@pytest.fixture
def clock() -> ManualClock:
    # 19:00 UTC on 29 April: 5 h to the daily reset, 1 day 5 h to the monthly one.
    return ManualClock(datetime(2026, 4, 29, 19, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    s = await open_store(db_path, clock=clock)
    yield s
    await s.close()


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return make_settings(db_path)


@pytest.fixture
def quota(store: SqliteStore, settings: Settings, clock: ManualClock) -> Quota:
    return Quota(store, settings, clock=clock)

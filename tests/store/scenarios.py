"""What the store and quota tests are made of: a clock moved by hand, requests of a
given cost, settings with given limits, users and places, and the contention cases.

Plain code without pytest, so that the child processes of the multi-process test
(`admit_proc`) load only this and the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot import catalog
from bot.config import QuotaSettings, Settings
from bot.model import GenerationRequest
from bot.ports import Place, User


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


# Contention cases: quota settings, and whether the 200 callers are one user or 200 users.
CASES = {
    "daily": ({"daily_credits": 100, "max_concurrent_jobs": 1000}, True),
    "concurrent": ({"max_concurrent_jobs": 10, "daily_credits": 100_000, "monthly_credits": 100_000}, True),
    "global": ({"global_daily_credits": 100}, False),
    "workspace": ({"workspace_monthly_credits": 100}, False),
}


def v1_rows(now: str, mark: str = "?") -> list[tuple[str, tuple[object, ...]]]:
    """A user, a finished job and its reserve + settle ledger rows, as a version-1 store
    held them: the statements for either backend (`mark` is its parameter mark)."""
    rows: list[tuple[str, tuple[object, ...]]] = [
        ("INSERT INTO users (key, platform, platform_id, name, created_at, updated_at)"
         " VALUES ('discord:1', 'discord', '1', 'a', ?, ?)", (now, now)),
        ("INSERT INTO jobs (owner_key, owner_platform, owner_id, owner_name, place_platform, channel,"
         " workspace, workspace_key, endpoint_id, input_json, state, estimate_credits, estimate_usd,"
         " settled_credits, created_at, updated_at) VALUES ('discord:1', 'discord', '1', 'a', 'discord',"
         " 'c', 'g', 'discord:g', 'e', '{}', 'done', 30, 0.3, 25, ?, ?)", (now, now)),
    ]
    rows += [("INSERT INTO ledger (kind, credits, usd, job_id, user_key, workspace_key, at, charged_at,"
              " day, month) VALUES (?, ?, 0, 1, 'discord:1', 'discord:g', ?, ?, ?, ?)",
              (kind, credits, now, now, now[:10], now[:7]))
             for kind, credits in (("reserve", 30), ("settle", -5))]
    return [(sql.replace("?", mark), params) for sql, params in rows]

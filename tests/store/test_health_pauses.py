"""`ltx-bot health` (and `health --deep`) name every active pause of video generation,
on both backends: an operator sees at once that fal refused the account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cli
from bot.store import open_store
from bot.store.pauses import PauseRow


def config_for(tmp_path: Path, where: str | Path) -> Path:
    config = tmp_path / "health.toml"
    target = f'url = "{where}"' if isinstance(where, str) else f'path = "{where}"'
    config.write_text(f'[database]\n{target}\n\n[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    return config


async def pause_everywhere(where: str | Path) -> None:
    store = await open_store(where)
    try:
        await store.set_pause(PauseRow(
            scope="*", kind="fal_account", reason="User is locked. Reason: Exhausted balance",
            by="fal", since=datetime(2026, 4, 29, 18, 30, 5, tzinfo=UTC)))
        await store.set_pause(PauseRow(
            scope="discord:42", kind="admin", reason="", by="mod",
            since=datetime(2026, 4, 29, 18, 45, tzinfo=UTC)))
    finally:
        await store.close()


def test_health_names_active_pauses(where: str | Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = str(config_for(tmp_path, where))
    asyncio.run(_fresh(where))
    assert cli.main(["health", "--no-heartbeat", "--config", config]) == 0
    assert "paused" not in capsys.readouterr().out  # nothing paused: nothing said
    asyncio.run(pause_everywhere(where))
    for deep in ([], ["--deep"]):
        assert cli.main(["health", "--no-heartbeat", *deep, "--config", config]) == 0
        out = capsys.readouterr().out
        assert ("video generation paused: everywhere (fal_account) since 2026-04-29 18:30:05 "
                "UTC: User is locked. Reason: Exhausted balance") in out, out
        assert "discord:42 (admin) since 2026-04-29 18:45:00 UTC: no reason given" in out, out


async def _fresh(where: str | Path) -> None:
    # The store as `run` leaves it (migrated), before any pause.
    await (await open_store(where)).close()

"""`ltx-bot export-usage` and the query under it, on both backends: the export adds up to
the ledger's non-grant rows, whatever it is grouped by, and changes nothing."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli, usage_export
from bot.quota import Quota
from bot.store import SqlStore
from bot.store.privacy import NO_WORKSPACE
from bot.store.privacy import usage_export as export_rows

from .conftest import ALICE, BOB, DM, GUILD, OTHER_GUILD, ManualClock, make_request


async def _spend(store: SqlStore, quota: Quota, clock: ManualClock) -> None:
    """Jobs settled cheaper, refunded and left reserved, in two servers and a DM, and a grant."""
    await quota.grant(ALICE.key, 500, by="discord:1")
    a = await quota.admit(ALICE, GUILD, make_request(40))
    await quota.settle(a.id, 0.333)  # 34 credits, rounded up
    b = await quota.admit(BOB, OTHER_GUILD, make_request(25, endpoint_key="ltx-2"))
    await quota.refund(b.id)
    await quota.admit(BOB, DM, make_request(12))
    clock.advance(days=1)
    await quota.admit(ALICE, DM, make_request(7, endpoint_key="ltx-2"))


@pytest.mark.parametrize("by", ["user", "workspace", "model"])
async def test_export_totals_equal_the_ledgers_non_grant_sums(
        store: SqlStore, quota: Quota, clock: ManualClock, by: usage_export.ExportBy) -> None:
    await _spend(store, quota, clock)
    since = datetime(2026, 4, 1, tzinfo=UTC)
    until = datetime(2026, 5, 1, tzinfo=UTC)
    rows = await store.run(lambda tx: export_rows(tx, by, since, until), write=False)
    ledger = [r for r in await store.ledger_rows() if r["kind"] != "grant"]
    assert sum(r.credits for r in rows) == sum(r["credits"] for r in ledger) == 34 + 0 + 12 + 7
    assert sum(r.usd for r in rows) == pytest.approx(sum(r["usd"] for r in ledger))
    assert sum(r.jobs for r in rows) == 4
    assert await store.audit() == []
    if by == "workspace":
        assert {r.key for r in rows} == {"discord:g1", "discord:g2", NO_WORKSPACE}
    if by == "user":
        alice = next(r for r in rows if r.key == ALICE.key)
        assert (alice.name, alice.jobs, alice.credits) == ("alice", 2, 41)


async def test_until_is_exclusive(store: SqlStore, quota: Quota, clock: ManualClock) -> None:
    await _spend(store, quota, clock)
    day = datetime(2026, 4, 29, tzinfo=UTC)
    first = await store.run(lambda tx: export_rows(tx, "user", day, day + timedelta(days=1)))
    second = await store.run(lambda tx: export_rows(tx, "user", day + timedelta(days=1),
                                                    day + timedelta(days=2)))
    assert sum(r.credits for r in first) == 34 + 12
    assert [(r.key, r.credits) for r in second] == [(ALICE.key, 7)]


def test_window_defaults_to_tomorrow_and_refuses_bad_dates() -> None:
    now = datetime(2026, 4, 29, 23, 59, tzinfo=UTC)
    assert usage_export.window("2026-04-01", None, now) == (
        datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC))
    with pytest.raises(usage_export.ExportError, match="YYYY-MM-DD"):
        usage_export.window("April", None, now)
    with pytest.raises(usage_export.ExportError, match="must be after"):
        usage_export.window("2026-04-02", "2026-04-02", now)


async def test_cli_writes_csv_and_json(tmp_path: Path, clock: ManualClock,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from bot.store import open_store

    from .conftest import make_settings

    db = tmp_path / "data" / "bot.sqlite3"
    settings = make_settings(db)
    store = await open_store(db, clock=clock)
    await _spend(store, Quota(store, settings, clock=clock), clock)
    await store.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{db}"\n')
    # asyncio.run inside the command needs a thread without a running loop.
    import asyncio

    async def main(*args: str) -> int:
        return await asyncio.to_thread(cli.main, ["export-usage", "--config", str(config), *args])

    assert await main("--since", "2026-04-01", "--until", "2026-05-01", "--by", "workspace") == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0]) == list(usage_export.FIELDS)
    assert sum(int(r["credits"]) for r in table) == 53
    assert await main("--since", "2026-04-01", "--until", "2026-05-01", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["key"] for r in data} == {ALICE.key, BOB.key}
    assert set(data[0]) == set(usage_export.FIELDS)
    assert await main("--since", "2026-13-01") == 2
    assert "--since must be a date as YYYY-MM-DD" in capsys.readouterr().err

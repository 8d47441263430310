"""Pauses in the store, on both backends: one row per scope and kind, set once (which is
how the operator is told once across processes), seen by every process on the store,
lifted by scope and kind."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.store import SCHEMA_VERSION, SqlStore, open_store
from bot.store.pauses import EVERYWHERE, PauseRow

from .scenarios import ManualClock

SINCE = datetime(2026, 4, 29, 19, 0, tzinfo=UTC)


def row(kind: str = "fal_account", scope: str = EVERYWHERE, reason: str = "HTTP 403") -> PauseRow:
    return PauseRow(scope=scope, kind=kind, reason=reason, by="fal", since=SINCE)


async def test_a_pause_is_set_once_and_seen_by_another_process(
    store: SqlStore, where: str | Path, clock: ManualClock,
) -> None:
    assert await store.schema_version() == SCHEMA_VERSION
    assert await store.pauses() == []
    other = await open_store(where, clock=clock)
    try:
        assert await store.set_pause(row()) is True
        # The same pause again, from any process: already there, nothing changes.
        assert await other.set_pause(row(reason="HTTP 401")) is False
        assert await other.pauses() == [row()]
        assert (await other.pauses())[0].since == SINCE
    finally:
        await other.close()


async def test_pauses_by_scope_and_kind(store: SqlStore) -> None:
    await store.set_pause(row("admin", reason="maintenance"))
    await store.set_pause(row("admin", scope="discord:G1", reason="this server only"))
    await store.set_pause(row())
    everywhere = await store.pauses()
    assert [(p.scope, p.kind) for p in everywhere] == [(EVERYWHERE, "admin"),
                                                       (EVERYWHERE, "fal_account")]
    assert len(await store.pauses([EVERYWHERE, "discord:G1"])) == 3
    assert await store.pauses(["slack:T1"]) == []

    assert await store.clear_pauses(EVERYWHERE, ["fal_account"]) == 1
    assert [p.kind for p in await store.pauses()] == ["admin"]
    assert await store.clear_pauses(EVERYWHERE, ["admin", "fal_account"]) == 1
    assert await store.clear_pauses(EVERYWHERE, ["admin"]) == 0
    # Another scope's pause is its own.
    assert [p.reason for p in await store.pauses(["discord:G1"])] == ["this server only"]

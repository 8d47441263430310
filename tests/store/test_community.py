"""A server's settings, the admin audit and the safety counters, on both backends."""

from __future__ import annotations

from datetime import timedelta

from bot.store import SCHEMA_VERSION, SqlStore
from bot.store.community import Community

from .scenarios import ManualClock


async def test_settings_are_kept_per_scope_and_reset(store: SqlStore, clock: ManualClock) -> None:
    com = Community(store, clock)
    assert await store.schema_version() == SCHEMA_VERSION
    assert await com.settings("discord:1") == {}
    await com.set("discord:1", "blocklist", ["gore", "bad phrase"], "discord:9")
    await com.set("discord:1", "allow_dms", False, "discord:9")
    await com.set("discord:1", "allow_dms", True, "discord:8")  # a second set replaces the first
    await com.set("slack:T1", "allowed_channels", ["C1"], "slack:U1")
    assert await com.settings("discord:1") == {"blocklist": ["gore", "bad phrase"], "allow_dms": True}
    assert await com.settings("slack:T1") == {"allowed_channels": ["C1"]}
    assert await com.reset("discord:1", "blocklist") is True
    assert await com.reset("discord:1", "blocklist") is False
    assert await com.settings("discord:1") == {"allow_dms": True}


async def test_audit_newest_first_per_scope_and_since(store: SqlStore, clock: ManualClock) -> None:
    com = Community(store, clock)
    await com.record("discord:9", "discord:1", "grant", "discord:5", "Granted 5 credits")
    clock.advance(days=3)
    await com.record("slack:U1", "slack:T1", "settings set", "allow_dms", "off")
    clock.advance(minutes=1)
    await com.record("discord:9", "discord:1", "block", "discord:5")
    everything = await com.actions(None, clock() - timedelta(days=30))
    assert [e.action for e in everything] == ["block", "settings set", "grant"]
    assert everything[0].at == clock() and everything[0].actor == "discord:9"
    mine = await com.actions("discord:1", clock() - timedelta(days=1))
    assert [(e.action, e.target) for e in mine] == [("block", "discord:5")]


async def test_safety_events_are_counted_per_scope_kind_and_time(store: SqlStore,
                                                                 clock: ManualClock) -> None:
    com = Community(store, clock)
    start = clock()
    await com.count_event("discord:1", "discord:5", "blocklist", "100")
    await com.count_event("discord:1", "discord:6", "blocklist", "100")
    await com.count_event("discord:2", "discord:5", "blocklist", "200")
    assert await com.events("discord:1", "blocklist", start) == 2
    assert await com.events("discord:1", "report", start) == 0
    assert await com.events("discord:1", "blocklist", start + timedelta(seconds=1)) == 0

"""Installations and OAuth states (migration v8) on both backends: saved, replaced, found
and deleted per workspace; a state is consumed once and not after it ran out."""

from __future__ import annotations

from bot.store import SqlStore
from bot.store.installs import Installations
from tests.store.scenarios import ManualClock


async def test_installations_are_kept_per_platform_and_workspace(store: SqlStore) -> None:
    chat = Installations(store, "chat")
    other = Installations(store, "other")
    await chat.save("", "T1", "sealed-1")
    await chat.save("E1", "", "sealed-org")
    await other.save("", "T1", "someone-else")
    assert await chat.find("", "T1") == "sealed-1"
    assert await chat.find("E1", "") == "sealed-org"
    assert await chat.find("", "T2") is None
    await chat.save("", "T1", "sealed-2")  # a reinstall replaces the token
    assert await chat.find("", "T1") == "sealed-2"
    assert await chat.count() == 2
    assert await chat.delete("", "T1")
    assert not await chat.delete("", "T1")
    assert await chat.find("", "T1") is None
    assert await other.find("", "T1") == "someone-else"


async def test_an_oauth_state_is_consumed_once_and_not_after_it_ran_out(
    store: SqlStore, clock: ManualClock,
) -> None:
    states = Installations(store, "chat")
    await states.issue_state("s-1", 600)
    await states.issue_state("s-2", 600)
    assert await states.consume_state("s-1")
    assert not await states.consume_state("s-1")  # a replayed redirect
    assert not await states.consume_state("never-issued")
    clock.advance(seconds=601)
    assert not await states.consume_state("s-2")

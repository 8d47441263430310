"""forget-me requests waiting for their button, on both backends and across two stores on
one database (two processes): asked through one, confirmed through the other, once;
never for another user, never after they ran out, and gone when the user is forgotten."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store import SqlStore, open_store
from bot.store.forget_requests import ForgetRequests
from bot.store.privacy import forget_user, forgotten_key, user_data

from .conftest import ALICE, BOB, ManualClock

SECONDS = 600.0


async def _rows(store: SqlStore) -> list[str]:
    rows = await store.run(lambda tx: tx.fetch(  # type: ignore[attr-defined]
        "SELECT user_key FROM forget_requests ORDER BY user_key"), write=False)
    return [r["user_key"] for r in rows]


async def test_asked_in_one_process_confirmed_in_another_once(
        store: SqlStore, where: str | Path, clock: ManualClock) -> None:
    other = await open_store(where, clock=clock)
    try:
        await ForgetRequests(store, clock).ask(ALICE.key, SECONDS)
        assert not await ForgetRequests(other, clock).confirm(BOB.key)  # not Bob's request
        # Two presses at once, one in each process: one of them counts.
        both = await asyncio.gather(ForgetRequests(store, clock).confirm(ALICE.key),
                                    ForgetRequests(other, clock).confirm(ALICE.key))
        assert sorted(both) == [False, True]
        assert await _rows(store) == []
    finally:
        await other.close()


async def test_a_request_runs_out_and_a_new_ask_renews_it(
        store: SqlStore, clock: ManualClock) -> None:
    requests = ForgetRequests(store, clock)
    await requests.ask(ALICE.key, SECONDS)
    clock.advance(seconds=SECONDS - 1)
    await requests.ask(ALICE.key, SECONDS)  # asked again: ten minutes from now
    clock.advance(seconds=SECONDS - 1)
    assert await requests.confirm(ALICE.key)
    await requests.ask(ALICE.key, SECONDS)
    clock.advance(seconds=SECONDS + 1)
    assert not await requests.confirm(ALICE.key)
    await requests.ask(BOB.key, SECONDS)  # an ask clears the requests that ran out
    assert await _rows(store) == [BOB.key]


async def test_forgetting_the_user_drops_their_request(store: SqlStore, clock: ManualClock) -> None:
    assert await store.ensure_user(ALICE)
    await ForgetRequests(store, clock).ask(ALICE.key, SECONDS)
    # my-data lists it (it names them), with when it runs out.
    data = await store.run(lambda tx: user_data(tx, ALICE.key), write=False)
    assert len(data["forget_requests"]) == 1 and data["forget_requests"][0]["expires_at"]
    await ForgetRequests(store, clock).ask(BOB.key, SECONDS)
    await store.run(lambda tx: forget_user(tx, ALICE.key, forgotten_key(ALICE.key), clock()))
    assert await _rows(store) == [BOB.key]

"""Blocks that outlast forget-me, on both backends and across two stores on one database:
forgetting keeps a hash per block, the key's return turns them into blocks again once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store import SqlStore, open_store
from bot.store.block_marks import mark_of
from bot.store.community import Community
from bot.store.privacy import forget_user, forgotten_key

from .conftest import ALICE, BOB, ManualClock

HERE = "console:room"
BLOCK = "blocked_user:" + ALICE.key


async def test_forgetting_keeps_a_hash_per_block_and_a_return_restores_them_once(
        store: SqlStore, where: str | Path, clock: ManualClock) -> None:
    community = Community(store, clock)
    await store.run(lambda tx: tx.upsert_user(ALICE, clock()))
    await store.set_blocked(ALICE.key, True)
    await community.set(HERE, BLOCK, True, "console:mod")
    await store.run(lambda tx: forget_user(tx, ALICE.key, forgotten_key(ALICE.key), clock()))

    rows = await store.run(lambda tx: tx.fetch(  # type: ignore[attr-defined]
        "SELECT mark, scope FROM block_marks ORDER BY scope"), write=False)
    assert [(r["mark"], r["scope"]) for r in rows] == [(mark_of(ALICE.key), "*"),
                                                       (mark_of(ALICE.key), HERE)]
    assert ALICE.key not in mark_of(ALICE.key) and BLOCK not in await community.settings(HERE)
    assert await community.restore_blocks(BOB.key) == []  # someone else: nothing

    other = await open_store(where, clock=clock)
    try:  # Alice comes back to two processes at once: the blocks return once.
        both = await asyncio.gather(community.restore_blocks(ALICE.key),
                                    Community(other, clock).restore_blocks(ALICE.key))
    finally:
        await other.close()
    assert sorted(both) == [[], ["*", HERE]]
    user = await store.get_user(ALICE.key)
    assert user is not None and user.blocked
    assert (await community.settings(HERE))[BLOCK] is True
    assert await community.restore_blocks(ALICE.key) == []  # the marks are gone

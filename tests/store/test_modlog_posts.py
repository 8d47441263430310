"""The moderation log's posts, remembered per user they are about, on both backends:
kept once per post and user, read back for forget-me, and dropped by the forget
transaction (the other user's rows of the same post stay)."""

from __future__ import annotations

from bot.ports import MessageRef
from bot.store import SqlStore
from bot.store.modlog_posts import ModlogPosts
from bot.store.privacy import forget_user, forgotten_key, user_data

from .conftest import ALICE, BOB, ManualClock

STARTED = MessageRef("discord", "mods", "m1", extra={"thread": "t9"})
REFUSED = MessageRef("discord", "mods", "m2")
REPORTED = MessageRef("slack", "C-mods", "17.5")


async def test_posts_are_kept_per_user_and_dropped_when_forgotten(
        store: SqlStore, clock: ManualClock) -> None:
    posts = ModlogPosts(store, clock)
    assert await store.ensure_user(ALICE) and await store.ensure_user(BOB)
    await posts.keep(STARTED, 1, ALICE.key)
    clock.advance(minutes=1)
    await posts.keep(REFUSED, 0, ALICE.key)
    await posts.keep(REFUSED, 0, ALICE.key)  # once per post and user
    clock.advance(minutes=1)
    await posts.keep(REPORTED, 7, BOB.key, ALICE.key)  # Bob's video, reported by Alice
    mine = await posts.of_user(ALICE.key)
    assert [(p.job_id, p.ref) for p in mine] == [(1, STARTED), (0, REFUSED), (7, REPORTED)]
    assert [p.ref for p in await posts.of_user(BOB.key)] == [REPORTED]
    assert await posts.listed(STARTED)
    # my-data says where they are (never what they say: the store does not hold that).
    listed = [r for r in (await store.run(lambda tx: user_data(tx, ALICE.key), write=False))[
        "moderation"] if r["table"] == "modlog_posts"]
    assert [(r["job_id"], r["channel"], r["message_id"]) for r in listed] == [
        (1, "mods", "m1"), (0, "mods", "m2"), (7, "C-mods", "17.5")]

    await store.run(lambda tx: forget_user(tx, ALICE.key, forgotten_key(ALICE.key), clock()))

    assert await posts.of_user(ALICE.key) == []
    assert not await posts.listed(STARTED) and not await posts.listed(REFUSED)
    # Bob's row of the report stays: his own forget-me would edit it.
    assert [p.ref for p in await posts.of_user(BOB.key)] == [REPORTED]
    assert await posts.listed(REPORTED)

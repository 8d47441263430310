"""End to end: Discord payloads -> the real core and job runner -> fal simulator -> fake Discord.

Every scenario goes through discord.py's command tree, view store or modal store,
the real `Bot.handle`, the JobRunner and the simulator, and is judged by what the
fake Discord REST API ends up holding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord_bot import DiscordRunner, LtxClient
from adapters.discord_render import button_ids, flatten_message
from bot.config import Settings
from tests.discord.conftest import (
    dispatch,
    dispatch_guild,
    dispatch_message,
    mp4_bytes,
    open_modal,
    png_bytes,
)
from tests.discord.fake_api import EPHEMERAL, Call, FakeDiscord
from tests.discord.payloads import CHANNEL_ID, USER_ID, Payloads, minutes_ago

RESULT_KINDS = ("reroll", "extend", "retake", "continue", "delete", "report")


@dataclass
class Live:
    app: Any
    runner: DiscordRunner
    fake: FakeDiscord
    p: Payloads

    @property
    def client(self) -> LtxClient:
        return self.runner.client

    async def delivered(self, after: int = 0) -> tuple[dict[str, Any], int]:
        """The first finished-video message posted after call #`after`, and its job id."""
        call = await self.fake.wait_for(
            lambda c: self.fake.calls.index(c) >= after and c.method == "POST" and c.status == 200
            and any(f.filename.endswith(".mp4") for f in c.files),
            limit=30, what="a delivered video")
        message = self.fake.messages[int(call.response["id"])]
        ids = button_ids(message)
        assert [i.rsplit(":", 1)[1] for i in ids] == list(RESULT_KINDS), ids
        return message, int(ids[0].split(":")[2])

    async def wait_job(self, job_id: int) -> Any:
        return await self.app.runner.wait(job_id)

    def original(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        mid = self.fake.interactions[payload["token"]].original_id
        return None if mid is None else self.fake.visible(mid)


@pytest.fixture
async def live(app: Any, fake: FakeDiscord, settings: Settings, payloads: Payloads) -> AsyncIterator[Live]:
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    runner = DiscordRunner(app, settings)
    await runner.login()
    try:
        yield Live(app, runner, fake, payloads)
    finally:
        await runner.close()


async def test_text_to_video(live: Live) -> None:
    payload = live.p.slash("video", {"prompt": "a paper boat on a stormy sea"})
    dispatch(live.client, payload)
    message, job_id = await live.delivered()
    assert message["attachments"][0]["filename"].endswith(".mp4")
    assert "paper boat" in flatten_message(message)
    job = await live.wait_job(job_id)
    assert job.state.value == "done" and job.owner_id == str(USER_ID)
    status = live.original(payload)
    assert status is not None and f"Job #{job_id}" in flatten_message(status)
    assert button_ids(status) == []  # final card: no Cancel any more
    # Status edits and the upload rode on the interaction: no bot-token message was needed.
    assert not [c for c in live.fake.calls if c.bot_auth and c.path.startswith("/channels/")]


def _notes(fake: FakeDiscord) -> list[str]:
    return [m["content"] for mid, m in fake.messages.items()
            if m["flags"] & EPHEMERAL and mid not in fake.deleted]


async def test_image_to_video_from_an_option(live: Live) -> None:
    image = live.p.attachment("cat.png", png_bytes((160, 96)), "image/png")
    dispatch(live.client, live.p.slash("video", {"prompt": "the cat blinks", "duration": 1.0},
                                       attachments={"image": image}))
    message, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2-19b/image-to-video"
    assert job.input["num_frames"] == 25  # 1 s at 25 fps, snapped to 8k+1
    assert message["attachments"][0]["size"] > 0


async def test_mention_reply_runs_in_the_channel(live: Live) -> None:
    bot = live.fake.bot_id
    image = live.p.attachment("sea.png", png_bytes(), "image/png")
    original = live.p.message(author_id=USER_ID + 1, author_name="bob", attachments=[image])
    dispatch_guild(live.client, live.p.guild_create())
    mention = live.p.message(
        content=f"<@{bot}> the waves start crashing --seconds 1", mentions=[bot], referenced=original)
    dispatch_message(live.client, mention)
    video, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.prompt == "the waves start crashing" and "image-to-video" in job.endpoint_id
    # No interaction: status card and video are channel messages sent with the bot token.
    upload = [c for c in live.fake.calls if c.files][-1]
    assert upload.bot_auth and upload.path == f"/channels/{CHANNEL_ID}/messages"
    status = live.fake.visible(int(job.status_message.id))
    assert status is not None and f"Job #{job_id}" in flatten_message(status)
    # Both answer the mention as replies (in a busy channel they stay next to the request),
    # and a reply whose target is gone is posted anyway rather than refused.
    assert live.fake.replied_to(status) == int(mention["id"])
    assert live.fake.replied_to(video) == int(mention["id"])
    card_post = live.fake.calls_to("POST", f"/channels/{CHANNEL_ID}/messages")[0]
    assert card_post.body["message_reference"]["fail_if_not_exists"] is False


async def test_a_reply_to_a_deleted_mention_is_still_delivered(live: Live) -> None:
    """The user deletes their mention while the job runs: the video comes as a plain message."""
    bot = live.fake.bot_id
    image = live.p.attachment("sea.png", png_bytes(), "image/png")
    dispatch_guild(live.client, live.p.guild_create())
    mention = live.p.message(content=f"<@{bot}> the sea glitters --seconds 1", mentions=[bot],
                             attachments=[image])
    dispatch_message(live.client, mention)
    await live.fake.wait_for(lambda c: c.method == "POST" and c.path == f"/channels/{CHANNEL_ID}/messages",
                             what="the card")
    live.fake.deleted.add(int(mention["id"]))
    video, job_id = await live.delivered()
    assert (await live.wait_job(job_id)).state.value == "done"
    assert live.fake.replied_to(video) is None


@pytest.mark.parametrize("how", ["deleted", "fetch fails"])
async def test_a_mention_replying_to_a_message_it_cannot_see_starts_nothing(
        live: Live, how: str) -> None:
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    image = live.p.attachment("sea.png", png_bytes(), "image/png")
    original = live.p.message(author_id=USER_ID + 1, author_name="bob", attachments=[image])
    mention = live.p.message(content=f"<@{bot}> the waves start crashing", mentions=[bot],
                             referenced=original)
    if how == "deleted":
        # The gateway says so: the reference is there, the message is null.
        live.fake.deleted.add(int(original["id"]))
        mention["referenced_message"] = None
    else:
        # Not in the event (too old for the cache), and the fetch is refused.
        del mention["referenced_message"]
        live.fake.fail_next("GET", f"/messages/{original['id']}", 403, code=50001)
    dispatch_message(live.client, mention)
    await live.fake.wait_until(lambda: bool(_dm_texts(live.fake, USER_ID)), what="the refusal")
    assert "couldn't see the message you replied to" in _dm_texts(live.fake, USER_ID)[0]
    assert await live.app.store.list_jobs(f"discord:{USER_ID}") == []
    assert await live.app.store.ledger_rows() == []
    # No card, no video: the channel holds only what the users wrote.
    assert [m for m in live.fake.channel_messages(CHANNEL_ID) if m["author"]["id"] == str(bot)] == []


def _dm_texts(fake: FakeDiscord, user_id: int) -> list[str]:
    """What the bot told a user privately outside an interaction (the fake's DM channel id)."""
    return [m["content"] for m in fake.channel_messages(user_id + 7)]


async def test_mention_extend_replying_to_the_bots_clip_runs_extend(live: Live, tmp_path: Path) -> None:
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    clip = live.p.attachment("ltx-1.mp4", mp4_bytes(tmp_path, frames=16), "video/mp4")
    result = live.p.message(author_id=bot, author_name="LTX", bot=True, attachments=[clip])
    dispatch_message(live.client, live.p.message(
        content=f"<@{bot}> extend more waves", mentions=[bot], referenced=result))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2.3/extend-video" and job.prompt == "more waves"


async def test_mention_keyframes_and_quote_words(live: Live) -> None:
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    a = live.p.attachment("a.png", png_bytes(colour=(200, 0, 0)), "image/png")
    b = live.p.attachment("b.png", png_bytes(colour=(0, 0, 200)), "image/png")
    dispatch_message(live.client, live.p.message(
        content=f"<@{bot}> /keyframes red turns blue --seconds 1", mentions=[bot], attachments=[a, b]))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id.endswith("/multiconditioning") and job.prompt == "red turns blue"
    dispatch_message(live.client, live.p.message(content=f"<@{bot}> quote a fox --seconds 1",
                                                 mentions=[bot]))
    await live.fake.wait_until(lambda: any("credit" in t.lower() for t in _dm_texts(live.fake, USER_ID)),
                               what="the quote")
    assert len([c for c in live.fake.calls if c.files]) == 1  # a quote runs nothing


async def test_mention_admin_goes_through_the_core_admin_command(live: Live, settings: Settings) -> None:
    from tests.discord.payloads import ADMIN_ID, STRANGER_ID

    settings.discord.admin_users = [ADMIN_ID]
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    dispatch_message(live.client, live.p.message(
        content=f"<@{bot}> admin grant <@{STRANGER_ID}> 50", mentions=[bot, STRANGER_ID],
        author_id=ADMIN_ID, author_name="boss"))
    await live.fake.wait_until(lambda: bool(_dm_texts(live.fake, ADMIN_ID)), what="the admin's answer")
    assert _dm_texts(live.fake, ADMIN_ID) == [f"Granted 50 credits to discord:{STRANGER_ID}."]
    row = await live.app.store.get_user(f"discord:{STRANGER_ID}")
    assert row is not None and row.bonus_credits == 50

    # The same words from someone who is not a configured admin: the core refuses.
    dispatch_message(live.client, live.p.message(
        content=f"<@{bot}> /admin grant <@{USER_ID}> 50", mentions=[bot, USER_ID]))
    await live.fake.wait_until(lambda: bool(_dm_texts(live.fake, USER_ID)), what="the refusal")
    assert "for the bot's admins" in _dm_texts(live.fake, USER_ID)[0]
    row = await live.app.store.get_user(f"discord:{USER_ID}")
    assert row is None or row.bonus_credits == 0


async def test_context_menus_with_their_modals(live: Live) -> None:
    image = live.p.attachment("sunset.png", png_bytes(), "image/png")
    target = live.p.message(attachments=[image], author_id=USER_ID + 3)
    modal = await open_modal(live.client, live.fake, live.p.context_menu("Animate image", target))
    dispatch(live.client, live.p.modal_submit(modal, ["the sun sinks", "1", "9:16"]))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.prompt == "the sun sinks" and job.input["video_size"] == "portrait_16_9"

    clip = live.p.attachment("wave.mp4", mp4_bytes(Path(live.app.settings.media.tmp_dir or "."),
                                                   frames=16), "video/mp4")
    target = live.p.message(attachments=[clip])
    after = len(live.fake.calls)
    modal = await open_modal(live.client, live.fake, live.p.context_menu("Extend video", target))
    dispatch(live.client, live.p.modal_submit(modal, ["it keeps rolling", "", ""]))
    _, job_id = await live.delivered(after)
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2.3/extend-video" and job.prompt == "it keeps rolling"


async def test_keyframes_and_extend_commands(live: Live, tmp_path: Path) -> None:
    a = live.p.attachment("a.png", png_bytes(colour=(200, 0, 0)), "image/png")
    b = live.p.attachment("b.png", png_bytes(colour=(0, 0, 200)), "image/png")
    dispatch(live.client, live.p.slash("keyframes", {"prompt": "red turns blue", "duration": 1.0},
                                       attachments={"image1": a, "image2": b}))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id.endswith("/multiconditioning") and len(job.input["images"]) == 2

    clip = live.p.attachment("clip.mp4", mp4_bytes(tmp_path, frames=16), "video/mp4")
    after = len(live.fake.calls)
    # from_frame is the old extend model's (the default LTX-2.3 one adds seconds).
    dispatch(live.client, live.p.slash("extend", {"prompt": "more --model ltx-extend", "from_frame": 8},
                                       attachments={"video": clip}))
    _, job_id = await live.delivered(after)
    job = await live.wait_job(job_id)
    assert job.endpoint_id.endswith("/extend") and job.input["video"]["start_frame_num"] == 8


async def test_quota_refusal_is_ephemeral(live: Live, settings: Settings) -> None:
    settings.quota.daily_credits = 0
    payload = live.p.slash("video", {"prompt": "anything"})
    dispatch(live.client, payload)
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="an ephemeral note")
    assert "credit" in _notes(live.fake)[0].lower()
    await live.fake.wait_until(lambda: live.original(payload) is None, what="placeholder removed")
    assert not [c for c in live.fake.calls if c.files]


async def test_bad_attachment_gets_an_ephemeral_error(live: Live) -> None:
    text = live.p.attachment("notes.png", b"this is not an image at all", "image/png")
    dispatch(live.client, live.p.slash("video", {"prompt": "x"}, attachments={"image": text}))
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="an ephemeral note")
    note = _notes(live.fake)[0]
    assert "notes.png" in note or "image" in note.lower()
    assert "error id" not in note  # a user error, not an unexpected one


async def _restart(live: Live, settings: Settings) -> None:
    """A new Discord client and port, as after a process restart: nothing kept in memory."""
    await live.runner.close()
    live.runner = DiscordRunner(live.app, settings)
    await live.runner.login()


async def test_result_buttons_after_a_restart(live: Live, settings: Settings) -> None:
    dispatch(live.client, live.p.slash("video", {"prompt": "a lighthouse at night"}))
    result, job_id = await live.delivered()
    await live.wait_job(job_id)
    await _restart(live, settings)

    after = len(live.fake.calls)
    dispatch(live.client, live.p.button(f"ltx:job:{job_id}:reroll", result))
    _, reroll_id = await live.delivered(after)
    reroll = await live.wait_job(reroll_id)
    assert reroll.parent_id == job_id and reroll.parent_kind == "reroll"
    assert reroll.prompt == "a lighthouse at night"

    for kind, prompt in (("extend", "the beam sweeps the sea"), ("continue", "dawn breaks")):
        after = len(live.fake.calls)
        modal = await open_modal(live.client, live.fake, live.p.button(f"ltx:job:{job_id}:{kind}", result))
        dispatch(live.client, live.p.modal_submit(modal, [prompt]))
        _, child_id = await live.delivered(after)
        child = await live.wait_job(child_id)
        assert (child.parent_id, child.parent_kind, child.prompt) == (job_id, kind, prompt)

    # Someone else may not delete it; the owner may.
    stranger = live.p.button(f"ltx:job:{job_id}:delete", result, user_id=USER_ID + 50, user_name="eve")
    dispatch(live.client, stranger)
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="a refusal")
    assert live.fake.visible(int(result["id"])) is not None
    dispatch(live.client, live.p.button(f"ltx:job:{job_id}:delete", result))
    await live.fake.wait_until(lambda: live.fake.visible(int(result["id"])) is None,
                               what="the result deleted")


async def test_cancel_button_and_command(live: Live, sim: Any) -> None:
    sim.options.run_seconds = 60.0  # long enough to be cancelled while running
    payload = live.p.slash("video", {"prompt": "a slow sunrise"})
    dispatch(live.client, payload)
    call: Call = await live.fake.wait_for(
        lambda c: c.method == "PATCH" and "@original" in c.path
        and any(i.endswith(":cancel") for i in button_ids(c.body or {})), what="a Cancel button")
    cancel_id = next(i for i in button_ids(call.body) if i.endswith(":cancel"))
    job_id = int(cancel_id.split(":")[2])
    status = live.original(payload)
    assert status is not None
    dispatch(live.client, live.p.button(cancel_id, status))
    job = await live.wait_job(job_id)
    assert job.state.value == "cancelled"
    await live.fake.wait_until(lambda: "Cancelled" in flatten_message(live.original(payload) or {}),
                               what="the cancelled card")
    assert button_ids(live.original(payload) or {}) == []

    dispatch(live.client, live.p.slash("video", {"prompt": "another slow one"}))
    second = await live.fake.wait_for(
        lambda c: c.method == "PATCH" and any(i.endswith(":cancel") and i != cancel_id
                                              for i in button_ids(c.body or {})), what="job 2")
    second_id = int(next(i for i in button_ids(second.body) if i.endswith(":cancel")).split(":")[2])
    dispatch(live.client, live.p.slash("cancel", {"job": second_id}))
    assert (await live.wait_job(second_id)).state.value == "cancelled"
    await live.fake.wait_until(lambda: any(f"#{second_id}" in n for n in _notes(live.fake)),
                               what="the cancel confirmation")


async def test_a_video_larger_than_the_limit_is_fitted(live: Live) -> None:
    dispatch(live.client, live.p.slash("video", {"prompt": "a busy market", "seed": 7}))
    first, _ = await live.delivered()
    size = first["attachments"][0]["size"]
    # Same request where Discord says uploads must be smaller than that video.
    live.p.filesize_limit = int(size * 0.6)
    after = len(live.fake.calls)
    dispatch(live.client, live.p.slash("video", {"prompt": "a busy market", "seed": 7}))
    second, job_id = await live.delivered(after)
    fitted = second["attachments"][0]["size"]
    assert fitted <= live.p.filesize_limit < size
    assert not [c for c in live.fake.calls if c.status == 413]
    assert (await live.wait_job(job_id)).result_size == fitted


async def test_expired_interaction_falls_back_to_channel_messages(live: Live, sim: Any) -> None:
    # Already past 15 minutes when the card is first edited: the port never tries the token.
    old = live.p.slash("video", {"prompt": "an old request"}, created=minutes_ago(16))
    dispatch(live.client, old)
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    token_calls = [c for c in live.fake.calls if old["token"] in c.path and "/callback" not in c.path]
    assert token_calls == []
    status_id = live.fake.interactions[old["token"]].original_id
    edits = live.fake.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{status_id}")
    assert edits and all(c.bot_auth for c in edits)
    assert "Done" in flatten_message(live.fake.visible(status_id or 0) or {})
    assert job.result_message is not None and "token" not in job.result_message.extra

    # Expiring mid-job: Discord answers 401/50027 and the port switches to the bot token.
    sim.options.run_seconds = 1.0
    fresh = live.p.slash("video", {"prompt": "a long request"})
    after = len(live.fake.calls)
    dispatch(live.client, fresh)
    await live.fake.wait_for(lambda c: fresh["token"] in c.path and c.method == "PATCH",
                             what="a webhook edit")
    live.fake.expire(fresh["token"])
    _, job_id = await live.delivered(after)
    await live.wait_job(job_id)
    refused = [c for c in live.fake.calls if fresh["token"] in c.path and c.status == 401]
    assert refused and refused[0].response["code"] == 50027
    status_id = live.fake.interactions[fresh["token"]].original_id
    await live.fake.wait_until(
        lambda: "Done" in flatten_message(live.fake.visible(status_id or 0) or {}), what="final card")
    assert live.fake.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{status_id}")[-1].bot_auth


async def test_a_429_storm_on_edits_still_delivers(live: Live) -> None:
    # More consecutive 429s than discord.py retries by itself, on edits and on the upload.
    live.fake.fail_next("PATCH", "/messages/@original", 429, count=14, retry_after=0.01)
    # The upload goes by followup or by channel message, depending on whether any edit got
    # through before it (a followup must not replace a still-loading message): storm both.
    live.fake.fail_next("POST", "/webhooks/", 429, count=3, retry_after=0.01)
    live.fake.fail_next("POST", "/channels/", 429, count=3, retry_after=0.01)
    payload = live.p.slash("video", {"prompt": "rain on a window"})
    dispatch(live.client, payload)
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.state.value == "done"
    await live.fake.wait_until(lambda: "Done" in flatten_message(live.original(payload) or {}),
                               what="the final card despite the storm")
    assert len([c for c in live.fake.calls if c.status == 429]) >= 17


async def test_cancel_after_a_full_restart_edits_the_same_card(
    fake: FakeDiscord, settings: Settings, sim: Any, payloads: Payloads,
) -> None:
    """Process restart: a new App resumes the job, a new client takes the Cancel press, and the
    card is still edited through the interaction token stored with the job."""
    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = settings.backend.fal_rest_url = sim.url
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    sim.options.run_seconds = 60.0
    first = App(settings)
    await first.start()
    runner = DiscordRunner(first, settings)
    await runner.login()
    payload = payloads.slash("video", {"prompt": "a very slow tide"})
    dispatch(runner.client, payload)
    call = await fake.wait_for(lambda c: c.method == "PATCH" and "@original" in c.path
                               and any(i.endswith(":cancel") for i in button_ids(c.body or {})))
    cancel_id = next(i for i in button_ids(call.body) if i.endswith(":cancel"))
    await runner.close()
    await first.stop()

    second = App(settings)
    runner = DiscordRunner(second, settings)
    await second.start()
    try:
        await runner.login()  # registers the port: the resumed job starts now
        status_id = fake.interactions[payload["token"]].original_id
        message = fake.visible(status_id or 0)
        assert message is not None
        dispatch(runner.client, payloads.button(cancel_id, message))
        job = await second.runner.wait(int(cancel_id.split(":")[2]))
        assert job.state.value == "cancelled"
        await fake.wait_until(lambda: "Cancelled" in flatten_message(fake.visible(status_id or 0) or {}),
                              what="the cancelled card")
        last = fake.calls_to("PATCH", "/messages/@original")[-1]
        assert payload["token"] in last.path and not last.bot_auth
    finally:
        await runner.close()
        await second.stop()


async def test_a_resumed_job_is_delivered_only_after_login(
    fake: FakeDiscord, settings: Settings, sim: Any, payloads: Payloads,
) -> None:
    """As `ltx-bot run` starts: the core first (it resumes unfinished jobs), then the adapter.
    A job whose result is ready at fal waits for the Discord port, which exists only once
    the client is logged in, and is then delivered through it."""
    import asyncio

    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = settings.backend.fal_rest_url = sim.url
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    # Still running when the first process stops: Discord's 3 s between edits means the
    # "Generating" card shows about 3 s in.
    sim.options.run_seconds = 6.0
    first = App(settings)
    await first.start()
    runner = DiscordRunner(first, settings)
    await runner.login()
    dispatch(runner.client, payloads.slash("video", {"prompt": "a tide that outlives a restart"}))
    await fake.wait_for(lambda c: c.method == "PATCH" and "@original" in c.path
                        and "Generating" in flatten_message(c.body or {}), what="the running card")
    [job] = await first.store.unfinished_jobs()
    await runner.close()
    await first.stop()
    assert job.fal_request_id is not None  # at fal: the next start follows it there

    second = App(settings)
    runner = DiscordRunner(second, settings)
    await second.start()
    try:
        async with asyncio.timeout(30):
            await sim.wait_state(job.fal_request_id, "COMPLETED")
        # Ready at fal, but no port yet: nothing is fetched or sent until the client can send.
        assert second.runner.port_for("discord") is None
        assert (await second.store.get_job(job.id)).state.value not in ("delivering", "done")
        before = len(fake.calls)
        await runner.login()
        login = next(i for i, c in enumerate(fake.calls)
                     if i >= before and c.path == "/users/@me")
        assert second.runner.port_for("discord") is runner.port
        done = await second.runner.wait(job.id)
        assert done.state.value == "done"
        upload = next(i for i, c in enumerate(fake.calls)
                      if any(f.filename.endswith(".mp4") for f in c.files) and c.status == 200)
        assert upload > login
    finally:
        await runner.close()
        await second.stop()


# ---------------------------------------------------------------- replayed interactions


class Heard(logging.Handler):
    """Log lines as they come, to await the one a dropped replay leaves behind."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.changed.set()

    async def until(self, text: str, count: int = 1) -> None:
        async with asyncio.timeout(15):
            while sum(text in line for line in self.lines) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def heard() -> Iterator[Heard]:
    handler = Heard()
    logger = logging.getLogger("adapters")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _callbacks(fake: FakeDiscord, payload: dict[str, Any]) -> list[Call]:
    return [c for c in fake.calls
            if c.path == f"/interactions/{payload['id']}/{payload['token']}/callback"]


def _no_errors(fake: FakeDiscord, caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not [m for m in fake.messages.values() if "error id" in (m.get("content") or "")]


async def test_a_replayed_interaction_is_dropped_before_any_answer(
        live: Live, settings: Settings, caplog: pytest.LogCaptureFixture, heard: Heard) -> None:
    """A gateway resume may deliver an INTERACTION_CREATE again, also to a restarted bot: it is
    claimed in the store before it is acknowledged, so the repeat is neither answered nor run."""
    caplog.set_level(logging.INFO)
    payload = live.p.slash("video", {"prompt": "a paper kite", "duration": 1.0})
    dispatch(live.client, payload)
    result, job_id = await live.delivered()
    await live.wait_job(job_id)
    dispatch(live.client, payload)
    await heard.until(f"ignoring interaction {payload['id']}")
    button = live.p.button(f"ltx:job:{job_id}:reroll", result)
    after = len(live.fake.calls)
    dispatch(live.client, button)
    _, reroll_id = await live.delivered(after)
    await live.wait_job(reroll_id)
    await _restart(live, settings)
    for replay in (payload, button, button):
        dispatch(live.client, replay)
    await heard.until(f"ignoring interaction {button['id']}", count=2)
    await heard.until(f"ignoring interaction {payload['id']}", count=2)
    assert len(_callbacks(live.fake, payload)) == len(_callbacks(live.fake, button)) == 1
    assert [j.id for j in await live.app.store.list_jobs(f"discord:{USER_ID}")] == [reroll_id, job_id]
    _no_errors(live.fake, caplog)


async def test_an_interaction_answered_elsewhere_is_left_alone(
        live: Live, caplog: pytest.LogCaptureFixture, heard: Heard) -> None:
    """Discord's 40060 ("already acknowledged") means it is handled: INFO, nothing shown, no
    second callback, and the command does not run behind an answer it did not give."""
    caplog.set_level(logging.INFO)
    payload = live.p.slash("quota", {})
    live.fake.interactions[payload["token"]].responded = True  # another answer got there first
    dispatch(live.client, payload)
    await live.fake.wait_for(lambda c: c.path.endswith("/callback") and c.status == 400,
                             what="the refused acknowledgement")
    await heard.until("was already acknowledged")
    assert len(_callbacks(live.fake, payload)) == 1
    assert not [c for c in live.fake.calls if "/webhooks/" in c.path]  # no note, no followup
    _no_errors(live.fake, caplog)


async def test_the_grant_options_range_is_the_operators_limit(
        fake: FakeDiscord, settings: Settings, app: Any) -> None:
    settings.quota.max_grant_credits = 5000
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    runner = DiscordRunner(app, settings)
    await runner.login()
    try:
        admin = next(c for c in fake.synced["global"] if c["name"] == "ltx-admin")
        grant = next(o for o in admin["options"] if o["name"] == "grant")
        credits = next(o for o in grant["options"] if o["name"] == "credits")
        assert (credits["min_value"], credits["max_value"]) == (-5000, 5000)
    finally:
        await runner.close()


async def test_buttons_with_a_job_number_past_64_bits_are_refused_plainly(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    ids = [f"ltx:job:99999999999999999999:{kind}" for kind in ("reroll", "extend", "cancel")]
    # A message carrying such buttons (discord.py answers only components its message has).
    message = live.p.message(author_id=live.fake.bot_id, author_name="LTX", bot=True)
    message["components"] = [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": i.rsplit(":", 1)[1], "custom_id": i} for i in ids]}]
    for custom_id in ids:
        dispatch(live.client, live.p.button(custom_id, message))
    await live.fake.wait_until(
        lambda: sum("There is no job #99999999999999999999." in n for n in _notes(live.fake)) == 3,
        what="three refusals")
    assert not [c for c in live.fake.calls
                if c.path.endswith("/callback") and c.body.get("type") == 9]  # no form opened
    assert await live.app.store.list_jobs(f"discord:{USER_ID}") == []
    _no_errors(live.fake, caplog)

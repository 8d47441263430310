"""DiscordPort against the fake REST API: webhook vs bot-token paths, the core throttle in
front of it, limits, notes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord_bot import LtxClient
from adapters.discord_port import DiscordPort
from adapters.discord_refs import UploadTooLarge
from adapters.discord_render import button_ids, flatten_message
from bot.config import Settings
from bot.ports import Action, Invocation, MessageRef, Place, StatusCard, User
from bot.throttle import EditThrottle, edit_interval
from tests.discord.conftest import ClientFactory, Recorder, dispatch, dispatch_guild, mp4_file
from tests.discord.fake_api import EPHEMERAL, FakeDiscord
from tests.discord.payloads import CHANNEL_ID, GUILD_ID, USER_ID, Payloads, minutes_ago

PLACE = Place("discord", str(CHANNEL_ID), str(GUILD_ID))
ALICE = User("discord", str(USER_ID), "alice")


def card(title: str, *, job_id: int = 5, final: bool = False, progress: float | None = None,
         actions: list[Action] | None = None) -> StatusCard:
    return StatusCard(title=title, lines=[f"about {title}"], job_id=job_id, state="running",
                      progress=progress, final=final, actions=actions or [],
                      elapsed_since=datetime.now(UTC) - timedelta(seconds=65),
                      eta=datetime.now(UTC) + timedelta(seconds=30), fal_position=3,
                      stage="denoising")


def shown(fake: FakeDiscord, ref: MessageRef) -> dict[str, Any]:
    if ref.id == "@original":
        mid = fake.interactions[ref.extra["token"]].original_id
        assert mid is not None
        msg = fake.visible(mid)
    else:
        msg = fake.visible(int(ref.id))
    assert msg is not None, f"message {ref.id} is gone"
    return msg


async def slash_video(client: LtxClient, recorder: Recorder, payloads: Payloads, n: int = 1,
                      **kwargs: Any) -> Invocation:
    dispatch(client, payloads.slash("video", {"prompt": f"job {n}"}, **kwargs))
    return await recorder.next(n)


@pytest.fixture
async def client(make_client: ClientFactory, settings: Settings, recorder: Recorder) -> LtxClient:
    return await make_client(settings, recorder)


async def test_post_edit_and_final_on_a_channel_message(client: LtxClient, fake: FakeDiscord) -> None:
    port = client.port
    ref = await port.post(PLACE, card("Queued", actions=[Action("cancel", 5, "Cancel")]))
    post = fake.calls_to("POST", f"/channels/{CHANNEL_ID}/messages")[-1]
    assert post.bot_auth
    msg = shown(fake, ref)
    text = flatten_message(msg)
    assert "Queued" in text and "fal queue: #3" in text and "Stage: denoising" in text
    assert "ETA: <t:" in text and "Elapsed: 1m 0" in text
    assert button_ids(msg) == ["ltx:job:5:cancel"]
    done = await port.edit(ref, card("Done", final=True))
    assert done == ref
    msg = shown(fake, ref)
    assert "Done" in flatten_message(msg) and button_ids(msg) == []  # buttons cleared
    assert fake.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{ref.id}")


async def test_status_message_is_the_interaction_response_edited_by_webhook(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    inv = await slash_video(client, recorder, payloads)
    ref = inv.status_message
    assert ref is not None
    new = await client.port.edit(ref, card("Running", progress=0.5))
    patch = fake.calls_to("PATCH", "/messages/@original")[-1]
    assert not patch.bot_auth and patch.path.startswith(f"/webhooks/{fake.app_id}/")
    msg = shown(fake, new)
    assert "▰" in flatten_message(msg) and "50%" in flatten_message(msg)
    assert new.id == msg["id"] and new.extra["token"] == ref.extra["token"]
    # Once the card shows, notes to the same user in the same place are ephemeral followups.
    await client.port.tell(inv.user, inv.place, "You have 12 credits left.")
    note = fake.calls_to("POST", f"/webhooks/{fake.app_id}/")[-1]
    assert note.body["flags"] == EPHEMERAL and note.body["content"] == "You have 12 credits left."
    assert note.response["flags"] & EPHEMERAL
    assert "Running" in flatten_message(shown(fake, new))  # the status card was not replaced


async def test_error_before_any_card_is_private_and_leaves_no_thinking_message(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    inv = await slash_video(client, recorder, payloads)
    original = fake.interactions[inv.interaction.token].original_id if inv.interaction else None
    await client.port.tell(inv.user, inv.place, "Your daily quota is used up.")
    followup = fake.calls_to("POST", f"/webhooks/{fake.app_id}/")[-1]
    note = fake.messages[int(followup.response["id"])]
    assert note["flags"] & EPHEMERAL and note["content"] == "Your daily quota is used up."
    assert original is not None and fake.visible(original) is None  # the public placeholder is gone


async def test_private_command_note_replaces_its_ephemeral_placeholder(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    dispatch(client, payloads.slash("quota"))
    inv = await recorder.next()
    await client.port.tell(inv.user, inv.place, "120 credits left today.")
    token = inv.interaction.token if inv.interaction else ""
    original = fake.messages[fake.interactions[token].original_id or 0]
    assert original["flags"] & EPHEMERAL and original["content"] == "120 credits left today."
    assert not fake.calls_to("POST", f"/webhooks/{fake.app_id}/")


async def test_expired_interaction_falls_back_to_bot_token_edits(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    # An interaction 16 minutes old: its token is past Discord's 15 minutes.
    inv = await slash_video(client, recorder, payloads, created=minutes_ago(16))
    ref = inv.status_message
    assert ref is not None and ref.id.isdigit()
    before = len(fake.calls)
    new = await client.port.edit(ref, card("Still running", progress=0.9))
    calls = fake.calls[before:]
    assert [(c.method, c.path) for c in calls] == [("PATCH", f"/channels/{CHANNEL_ID}/messages/{ref.id}")]
    assert calls[0].bot_auth and "token" not in new.extra
    assert "Still running" in flatten_message(shown(fake, new))


async def test_token_refused_mid_job_switches_to_channel_edits(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    inv = await slash_video(client, recorder, payloads)
    ref = inv.status_message
    assert ref is not None
    ref = await client.port.edit(ref, card("Queued"))
    fake.expire(ref.extra["token"])  # Discord answers 401/50027 from now on
    new = await client.port.edit(ref, card("Done", final=True))
    assert fake.calls[-2].status == 401 and fake.calls[-2].response["code"] == 50027
    assert fake.calls[-1].method == "PATCH" and fake.calls[-1].bot_auth
    assert new.id == ref.id and "Done" in flatten_message(shown(fake, new))


async def test_uneditable_message_is_reposted_and_old_ref_follows(
    client: LtxClient, fake: FakeDiscord,
) -> None:
    port = client.port
    ref = await port.post(PLACE, card("Queued"))
    fake.deleted.add(int(ref.id))  # someone deleted the status message
    new = await port.edit(ref, card("Running", final=True))
    assert new.id != ref.id and "Running" in flatten_message(shown(fake, new))
    again = await port.edit(ref, card("Done", final=True))  # the runner may still hold the old ref
    assert again.id == new.id and "Done" in flatten_message(shown(fake, new))


async def test_the_core_throttle_coalesces_edits_and_always_sends_the_final_state(
    client: LtxClient, fake: FakeDiscord, settings: Settings,
) -> None:
    port = DiscordPort(client, settings, min_edit_interval=3600)
    ref = await port.post(PLACE, card("Queued"))
    throttle: EditThrottle[StatusCard] = EditThrottle(
        lambda c: port.edit(ref, c), edit_interval(settings.jobs.edit_interval_seconds, port.traits))
    throttle.sent()
    for i in range(10):
        throttle.update(card(f"step {i}", progress=i / 10))
    await asyncio.sleep(0)
    assert not fake.calls_to("PATCH")  # all inside the interval: only the newest is kept
    await throttle.finish(card("Done", final=True))
    patches = fake.calls_to("PATCH")
    assert len(patches) == 1 and "Done" in patches[0].body["embeds"][0]["title"]


async def test_the_core_throttle_flushes_the_newest_card(
    client: LtxClient, fake: FakeDiscord, settings: Settings,
) -> None:
    port = DiscordPort(client, settings, min_edit_interval=0.05)
    assert port.traits.min_edit_seconds == 0.05
    ref = await port.post(PLACE, card("Queued"))
    throttle: EditThrottle[StatusCard] = EditThrottle(
        lambda c: port.edit(ref, c), edit_interval(settings.jobs.edit_interval_seconds, port.traits))
    throttle.sent()
    for i in range(5):
        throttle.update(card(f"step {i}"))
    await fake.wait_for(lambda c: c.method == "PATCH" and c.body["embeds"][0]["title"] == "step 4",
                        what="the newest card")
    titles = [c.body["embeds"][0]["title"] for c in fake.calls_to("PATCH")]
    assert titles == ["step 4"]


def test_discord_keeps_edits_of_one_message_3_seconds_apart(client: LtxClient) -> None:
    assert client.port.traits.min_edit_seconds == 3.0


async def test_final_edit_survives_a_429_storm(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    inv = await slash_video(client, recorder, payloads)
    ref = inv.status_message
    assert ref is not None
    # More 429s than discord.py retries on its own (5): the port must keep trying.
    fake.fail_next("PATCH", "/messages/@original", 429, count=8, retry_after=0.01)
    # A progress edit gives up with discord.py (the core's throttle tries a newer card later).
    with pytest.raises(discord.HTTPException):
        await client.port.edit(ref, card("Running", progress=0.3))
    new = await client.port.edit(ref, card("Done", final=True))
    assert "Done" in flatten_message(shown(fake, new))
    rate_limited = [c for c in fake.calls if c.status == 429]
    assert len(rate_limited) == 8


async def test_send_video_uploads_with_summary_and_buttons(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads, tmp_path: Path,
) -> None:
    video = mp4_file(tmp_path / "job-9.mp4")
    actions = [Action(k, 9, k.title()) for k in ("reroll", "extend", "continue", "delete")]
    # Without an interaction: a channel message with the bot token.
    ref = await client.port.send_video(PLACE, video, card("Job #9 done: seed 42", job_id=9, final=True,
                                                        actions=actions))
    upload = fake.calls_to("POST", f"/channels/{CHANNEL_ID}/messages")[-1]
    assert upload.bot_auth and [f.filename for f in upload.files] == ["job-9.mp4"]
    assert upload.files[0].size == video.stat().st_size
    msg = shown(fake, ref)
    assert "seed 42" in flatten_message(msg)
    assert button_ids(msg) == [f"ltx:job:9:{k}" for k in ("reroll", "extend", "continue", "delete")]
    # With the job's interaction alive: a followup, which needs no channel permissions.
    inv = await slash_video(client, recorder, payloads)
    assert inv.status_message is not None
    await client.port.edit(inv.status_message, card("Running", job_id=10))
    ref = await client.port.send_video(PLACE, video, card("Job #10 done", job_id=10, final=True))
    followup = fake.calls_to("POST", f"/webhooks/{fake.app_id}/")[-1]
    assert followup.files and followup.body.get("flags", 0) == 0
    assert shown(fake, ref)["attachments"][0]["filename"] == "job-9.mp4"
    assert ref.extra["token"] == inv.status_message.extra["token"]


async def test_upload_limit_comes_from_the_interaction_then_guild_then_config(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads, settings: Settings,
) -> None:
    port = client.port
    assert port.upload_limit(PLACE) == settings.discord.default_upload_limit_bytes
    dispatch_guild(client, payloads.guild_create(premium_tier=2))
    assert port.upload_limit(PLACE) == 50 * 1024 * 1024  # boost level 2
    payloads.filesize_limit = 25 * 1024 * 1024
    await slash_video(client, recorder, payloads)
    assert port.upload_limit(PLACE) == 25 * 1024 * 1024  # what Discord said last, here
    other = Place("discord", "123", str(GUILD_ID))
    assert port.upload_limit(other) == 50 * 1024 * 1024


async def test_too_large_never_uploads_and_413_is_a_clear_error(
    client: LtxClient, fake: FakeDiscord, tmp_path: Path, settings: Settings,
) -> None:
    video = mp4_file(tmp_path / "big.mp4", frames=16, size=(128, 128), noise=True)
    size = video.stat().st_size
    settings.discord.default_upload_limit_bytes = size - 1
    with pytest.raises(UploadTooLarge) as err:
        await client.port.send_video(PLACE, video, card("done", final=True))
    assert "MB" in str(err.value) and not fake.calls_to("POST", "/messages")
    # Discord's real limit turned out smaller than we knew: 413 becomes the same clear error.
    settings.discord.default_upload_limit_bytes = size * 2
    fake.upload_limit = size - 1
    with pytest.raises(UploadTooLarge):
        await client.port.send_video(PLACE, video, card("done", final=True))
    assert fake.calls_to("POST", "/messages")[-1].status == 413
    assert client.port.upload_limit(PLACE) < size  # learned: the runner fits the next try


async def test_delete_uses_the_webhook_while_alive_else_the_bot_token(
    client: LtxClient, fake: FakeDiscord, recorder: Recorder, payloads: Payloads,
) -> None:
    inv = await slash_video(client, recorder, payloads)
    assert inv.status_message is not None
    ref = await client.port.edit(inv.status_message, card("Done", final=True))
    await client.port.delete(ref)
    assert fake.calls[-1].method == "DELETE" and not fake.calls[-1].bot_auth
    assert fake.visible(int(ref.id)) is None
    posted = await client.port.post(PLACE, card("other"))
    await client.port.delete(posted)
    assert fake.calls[-1].method == "DELETE" and fake.calls[-1].bot_auth
    assert fake.visible(int(posted.id)) is None


async def test_tell_without_interaction_prefers_dm_then_mentions_in_channel(
    client: LtxClient, fake: FakeDiscord,
) -> None:
    await client.port.tell(ALICE, PLACE, "Job #4 failed; your credits were refunded.")
    dm_open = fake.calls_to("POST", "/users/@me/channels")[-1]
    assert int(dm_open.body["recipient_id"]) == USER_ID
    sent = fake.calls[-1]
    assert sent.path == f"/channels/{dm_open.response['id']}/messages"
    assert sent.body["content"].startswith("Job #4 failed")
    fake.fail_next("POST", "/users/@me/channels", 403, code=50007)
    await client.port.tell(ALICE, PLACE, "Quota used up.")
    sent = fake.calls[-1]
    assert sent.path == f"/channels/{CHANNEL_ID}/messages"
    assert sent.body["content"] == f"<@{USER_ID}> Quota used up."
    assert [int(u) for u in sent.body["allowed_mentions"]["users"]] == [USER_ID]


async def test_a_mentions_card_and_video_reply_to_it_also_after_a_restart(
    client: LtxClient, fake: FakeDiscord, payloads: Payloads, settings: Settings, tmp_path: Path,
) -> None:
    mention = payloads.message(content="a cat")
    asked = MessageRef("discord", str(CHANNEL_ID), mention["id"])
    with client.port.replying_to(asked):
        ref = await client.port.post(PLACE, card("Queued", job_id=8))
    other = await client.port.post(PLACE, card("Someone else's", job_id=9))  # not in that context
    assert fake.replied_to(shown(fake, ref)) == int(mention["id"])
    assert fake.replied_to(shown(fake, other)) is None
    # A new process knows the reply only from the stored reference of the card.
    fresh = DiscordPort(client, settings)
    edited = await fresh.edit(ref, card("Running", job_id=8))
    assert edited.extra["reply_to"] == mention["id"]
    sent = await fresh.send_video(PLACE, mp4_file(tmp_path / "v.mp4"), card("Done", job_id=8, final=True))
    assert fake.replied_to(shown(fake, sent)) == int(mention["id"])

"""Platform events -> Invocations, through discord.py's real command tree, view store and modals."""

from __future__ import annotations

from typing import Any

from adapters.discord_bot import LtxClient
from bot.config import Settings
from tests.discord.conftest import (
    ClientFactory,
    Recorder,
    dispatch,
    dispatch_message,
    open_modal,
    png_bytes,
)
from tests.discord.fake_api import FakeDiscord
from tests.discord.payloads import CHANNEL_ID, GUILD_ID, USER_ID, Payloads
from tests.mention_words import mention_words


async def test_login_syncs_commands_once_globally(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder
) -> None:
    await make_client(settings, recorder)
    puts = fake.calls_to("PUT", "/commands")
    assert len(puts) == 1 and puts[0].path == f"/applications/{fake.app_id}/commands"
    assert all(c.bot_auth for c in fake.calls)
    names = {c["name"] for c in fake.synced["global"]}
    assert {"video", "keyframes", "extend", "quota", "jobs", "cancel", "ltx-help", "ltx-admin",
            "Animate image", "Extend video"} <= names
    admin = next(c for c in fake.synced["global"] if c["name"] == "ltx-admin")
    # Shown by default to Manage Server (a server's admins use its settings and audit).
    assert int(admin["default_member_permissions"]) == 32


async def test_video_slash_command_defers_and_translates(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await make_client(settings, recorder)
    image = payloads.attachment("cat.png", png_bytes(), "image/png")
    payload = payloads.slash(
        "video",
        {"prompt": "a cat surfs", "duration": 5.0, "aspect_ratio": "9:16", "seed": 42,
         "audio": False, "camera": "dolly_in", "advanced": "--fps 24"},
        attachments={"image": image},
    )
    dispatch(client, payload)
    inv = await recorder.next()
    callback = fake.calls_to("POST", "/callback")[0]
    assert callback.body["type"] == 5 and not (callback.body.get("data") or {}).get("flags")
    assert inv.command == "video"
    assert inv.text == "a cat surfs --fps 24"
    assert inv.options == {"seconds": 5.0, "aspect": "9:16", "seed": 42, "audio": False,
                           "camera": "dolly_in"}
    assert [(a.filename, a.kind, a.content_type, a.size) for a in inv.attachments] == [
        ("cat.png", "image", "image/png", image["size"])]
    assert inv.attachments[0].url == image["url"]
    assert inv.user.id == str(USER_ID) and not inv.user.is_admin
    assert inv.place.channel == str(CHANNEL_ID) and inv.place.workspace == str(GUILD_ID)
    ref = inv.status_message
    assert ref is not None and ref.extra["token"] == payload["token"]
    assert ref.id == callback.response["interaction"]["response_message_id"]
    assert inv.interaction is not None and inv.interaction.token == payload["token"]


async def _client(make_client: ClientFactory, settings: Settings, recorder: Recorder) -> LtxClient:
    return await make_client(settings, recorder)


async def test_keyframes_and_extend_commands(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    a = payloads.attachment("a.png", png_bytes(), "image/png")
    b = payloads.attachment("b.webp", b"RIFF0000WEBP", None)  # no content type: kind from the name
    dispatch(client, payloads.slash("keyframes", {"prompt": "a flower opens", "positions": "0,64"},
                                    attachments={"image1": a, "image2": b}))
    inv = await recorder.next()
    assert inv.command == "keyframes" and inv.text == "a flower opens"
    assert inv.options == {"positions": "0,64"}
    assert [x.kind for x in inv.attachments] == ["image", "image"]
    clip = payloads.attachment("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    dispatch(client, payloads.slash("extend", {"prompt": "the wave breaks", "from_frame": 24},
                                    attachments={"video": clip}))
    inv = await recorder.next(2)
    assert inv.command == "extend" and inv.options == {"start_frame": 24}
    assert inv.attachments[0].kind == "video"


async def test_private_commands_defer_ephemerally(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    for n, (name, options) in enumerate(
            [("quota", {}), ("jobs", {}), ("ltx-help", {}), ("cancel", {"job": 12})], start=1):
        dispatch(client, payloads.slash(name, options))
        inv = await recorder.next(n)
        callback = fake.calls_to("POST", "/callback")[-1]
        assert callback.body == {"type": 5, "data": {"flags": 64}}, name
        assert inv.status_message is None
    assert [i.command for i in recorder.invocations] == ["quota", "jobs", "help", "cancel"]
    assert recorder.invocations[-1].options == {"job_id": 12}


async def test_admin_subcommands_need_a_configured_admin(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    from tests.discord.payloads import ADMIN_ID, STRANGER_ID

    settings.discord.admin_users = [ADMIN_ID]
    client = await _client(make_client, settings, recorder)
    dispatch(client, payloads.slash("ltx-admin", {"credits": 50}, sub="grant",
                                    users={"user": STRANGER_ID}))
    refused = await fake.wait_for(lambda c: c.path.endswith("/callback"))
    assert refused.body["type"] == 4 and refused.body["data"]["flags"] == 64
    assert "admin_users" in refused.body["data"]["content"]
    assert not recorder.invocations
    dispatch(client, payloads.slash("ltx-admin", {"credits": 50}, sub="grant",
                                    users={"user": STRANGER_ID}, user_id=ADMIN_ID, user_name="boss"))
    inv = await recorder.next()
    assert inv.command == "admin" and inv.user.is_admin
    assert inv.options == {"sub": "grant", "user": f"discord:{STRANGER_ID}", "credits": 50}
    dispatch(client, payloads.slash("ltx-admin", {"scope": "workspaces", "days": 7}, sub="usage",
                                    user_id=ADMIN_ID, user_name="boss"))
    inv = await recorder.next(2)
    assert inv.options == {"sub": "usage", "scope": "workspaces", "days": 7}


async def test_admin_by_role_name_or_id(settings: Settings) -> None:
    from adapters.discord_translate import refusal
    from bot.ports import Place, User

    settings.discord.allowed_roles = ["Video makers"]
    place = Place("discord", str(CHANNEL_ID), str(GUILD_ID))
    no_role = User("discord", "1", "a", roles=("123",))
    assert "requires one of these roles: Video makers" in (refusal(settings, no_role, place) or "")
    assert refusal(settings, User("discord", "1", "a", roles=("video makers",)), place) is None
    settings.discord.allowed_channels = [42]
    text = refusal(settings, User("discord", "1", "a", roles=("Video makers",)), place) or ""
    assert "<#42>" in text
    assert "direct messages" in (refusal(settings, no_role, Place("discord", "9")) or "")


async def test_refusal_is_ephemeral_and_says_what_is_required(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    settings.discord.allowed_channels = [CHANNEL_ID + 99]
    client = await _client(make_client, settings, recorder)
    dispatch(client, payloads.slash("video", {"prompt": "x"}))
    call = await fake.wait_for(lambda c: c.path.endswith("/callback"))
    assert call.body["type"] == 4 and call.body["data"]["flags"] == 64
    assert f"<#{CHANNEL_ID + 99}>" in call.body["data"]["content"]
    assert not recorder.invocations


async def _open_modal(client: LtxClient, fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    """Dispatch `payload`, wait until the bot's modal is open, return the modal callback body."""
    return await open_modal(client, fake, payload)


async def test_context_menus_open_a_modal_then_run_on_the_message_attachment(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    image = payloads.attachment("sunset.jpg", png_bytes(), "image/jpeg")
    target = payloads.message(content="look", attachments=[image], author_id=USER_ID + 5)
    modal = await _open_modal(client, fake, payloads.context_menu("Animate image", target))
    assert modal["data"]["title"] == "Animate image"
    dispatch(client, payloads.modal_submit(modal, ["the sun sinks", "4", "9:16"]))
    inv = await recorder.next()
    assert inv.command == "video" and inv.text == "the sun sinks"
    assert inv.options == {"seconds": 4.0, "aspect": "9:16"}
    assert [a.url for a in inv.attachments] == [image["url"]]
    submit_cb = fake.calls_to("POST", "/callback")[-1]
    assert submit_cb.body["type"] == 5  # the modal's answer is the job's public status message
    assert inv.status_message is not None

    clip = payloads.attachment("wave.mp4", b"....", "video/mp4")
    target = payloads.message(attachments=[clip])
    modal = await _open_modal(client, fake, payloads.context_menu("Extend video", target))
    dispatch(client, payloads.modal_submit(modal, ["it keeps going", "", ""]))
    inv = await recorder.next(2)
    assert inv.command == "extend" and inv.options == {} and inv.attachments[0].kind == "video"


async def test_context_menu_without_media_refuses_and_bad_seconds_refuse(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    dispatch(client, payloads.context_menu("Animate image", payloads.message(content="no files")))
    call = await fake.wait_for(lambda c: c.path.endswith("/callback"))
    assert call.body["data"]["flags"] == 64 and "no image" in call.body["data"]["content"]
    target = payloads.message(attachments=[payloads.attachment("a.png", png_bytes(), "image/png")])
    modal = await _open_modal(client, fake, payloads.context_menu("Animate image", target))
    before = len(fake.calls)
    dispatch(client, payloads.modal_submit(modal, ["x", "five", ""]))
    call = await fake.wait_for(lambda c: c.path.endswith("/callback") and fake.calls.index(c) >= before)
    assert call.body["type"] == 4 and "Seconds must be a number" in call.body["data"]["content"]
    assert not recorder.invocations


def _result_message(payloads: Payloads, job_id: int) -> dict[str, Any]:
    kinds = ("reroll", "extend", "continue", "delete")
    row = {"type": 1, "components": [
        {"type": 2, "style": 2, "label": k, "custom_id": f"ltx:job:{job_id}:{k}"} for k in kinds]}
    return payloads.message(author_id=payloads.fake.bot_id, author_name="LTX", bot=True,
                            components=[row])


async def test_buttons_survive_a_restart(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, payloads: Payloads,
) -> None:
    first = Recorder()
    client = await make_client(settings, first)
    message = _result_message(payloads, 31)
    dispatch(client, payloads.button("ltx:job:31:reroll", message))
    inv = await first.next()
    assert inv.command == "action" and inv.options == {"action": "reroll", "job_id": 31}
    assert fake.calls_to("POST", "/callback")[-1].body["type"] == 5  # new status message
    await client.close()

    # A new process: nothing is remembered but the custom ids on the message.
    second = Recorder()
    client = await make_client(settings, second)
    dispatch(client, payloads.button("ltx:job:31:delete", message))
    inv = await second.next()
    assert inv.options == {"action": "delete", "job_id": 31}
    assert fake.calls_to("POST", "/callback")[-1].body["type"] == 6  # acknowledged, no new message
    modal = await _open_modal(client, fake, payloads.button("ltx:job:31:extend", message))
    dispatch(client, payloads.modal_submit(modal, ["the camera rises"]))
    inv = await second.next(2)
    assert inv.command == "action" and inv.text == "the camera rises"
    assert inv.options == {"action": "extend", "job_id": 31}
    assert inv.status_message is not None


async def test_mention_replies_use_the_replied_to_attachments(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    bot = fake.bot_id
    image = payloads.attachment("sea.png", png_bytes(), "image/png")
    original = payloads.message(author_id=USER_ID + 1, author_name="bob", attachments=[image])
    reply = payloads.message(content=f"<@{bot}> the waves start crashing --seconds 5",
                             mentions=[bot], referenced=original)
    dispatch_message(client, reply)
    inv = await recorder.next()
    assert inv.command == "video" and inv.text == "the waves start crashing --seconds 5"
    assert [a.url for a in inv.attachments] == [image["url"]]
    assert inv.reply_to is not None and inv.reply_to.id == reply["id"]
    assert inv.interaction is None and inv.status_message is None
    assert not fake.calls_to("GET", "/messages/")  # resolved in the event: no fetch

    # The event did not carry the referenced message: it is fetched with the bot token.
    clip = payloads.attachment("clip.mp4", b"....", "video/mp4")
    older = payloads.message(author_id=USER_ID + 1, attachments=[clip])
    reply = payloads.message(content=f"<@!{bot}> --extend more waves", mentions=[bot], referenced=older)
    del reply["referenced_message"]
    dispatch_message(client, reply)
    inv = await recorder.next(2)
    assert inv.text == "--extend more waves" and inv.attachments[0].kind == "video"
    fetch = fake.calls_to("GET", f"/channels/{CHANNEL_ID}/messages/{older['id']}")
    assert len(fetch) == 1 and fetch[0].bot_auth

    # A mention with its own image, and a mention that asks for help.
    own = payloads.attachment("own.png", png_bytes(), "image/png")
    dispatch_message(client, payloads.message(content=f"<@{bot}> spin", mentions=[bot], attachments=[own]))
    inv = await recorder.next(3)
    assert inv.text == "spin" and inv.attachments[0].url == own["url"]
    dispatch_message(client, payloads.message(content=f"<@{bot}> help", mentions=[bot]))
    assert (await recorder.next(4)).command == "help"


async def test_messages_not_for_the_bot_are_ignored_and_invisible_attachments_explained(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    bot = fake.bot_id
    dispatch_message(client, payloads.message(content="just chatting"))
    dispatch_message(client, payloads.message(content=f"<@{bot}> hi", mentions=[bot], bot=True,
                                              author_id=USER_ID + 9))
    # Without the message content intent Discord blanks other people's attachments.
    hidden = payloads.message(author_id=USER_ID + 1, content="", attachments=[])
    dispatch_message(client, payloads.message(content=f"<@{bot}> animate this", mentions=[bot],
                                              referenced=hidden))
    dm = await fake.wait_for(lambda c: c.method == "POST" and c.path.startswith("/channels/")
                             and "content intent" in (c.body or {}).get("content", ""))
    assert dm.bot_auth
    assert not recorder.invocations


async def test_commands_are_offered_in_dms_only_when_allowed(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
) -> None:
    await make_client(settings, recorder)
    video = next(c for c in fake.synced["global"] if c["name"] == "video")
    assert video["contexts"] == [0]  # guild only
    settings.discord.allow_dms = True
    await make_client(settings, recorder)
    video = next(c for c in fake.synced["global"] if c["name"] == "video")
    assert sorted(video["contexts"]) == [0, 1]


async def test_dev_guilds_get_an_immediate_guild_sync_instead_of_global(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
) -> None:
    settings.discord.dev_guild_ids = [GUILD_ID, GUILD_ID + 1]
    await make_client(settings, recorder)
    puts = [c.path for c in fake.calls_to("PUT", "/commands")]
    assert puts == [f"/applications/{fake.app_id}/guilds/{GUILD_ID}/commands",
                    f"/applications/{fake.app_id}/guilds/{GUILD_ID + 1}/commands"]
    assert {c["name"] for c in fake.synced[f"guild:{GUILD_ID}"]} >= {"video", "Animate image"}


async def test_unexpected_adapter_failure_shows_only_an_error_id(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, payloads: Payloads,
    caplog: Any,
) -> None:
    class Broken(Recorder):
        async def handle(self, inv: Any, port: Any) -> None:
            raise RuntimeError("secret internals /etc/passwd")

    client = await make_client(settings, Broken())
    dispatch(client, payloads.slash("jobs"))
    note = await fake.wait_for(lambda c: c.method == "PATCH" and "@original" in c.path)
    content = note.body["content"]
    assert "error id" in content and "passwd" not in content
    cid = content.split("`")[1]
    assert any(cid in r.getMessage() for r in caplog.records)


async def test_a_failure_behind_a_mention_is_told_with_an_error_id(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, payloads: Payloads,
    caplog: Any,
) -> None:
    """Mentions have no interaction to answer on: the boundary tells the user through the port."""

    class Broken(Recorder):
        async def handle(self, inv: Any, port: Any) -> None:
            raise RuntimeError("secret internals /etc/passwd")

    client = await make_client(settings, Broken())
    bot = fake.bot_id
    dispatch_message(client, payloads.message(content=f"<@{bot}> a cat", mentions=[bot]))
    note = await fake.wait_for(lambda c: c.method == "POST" and c.path.startswith("/channels/")
                               and "error id" in (c.body or {}).get("content", ""))
    content = note.body["content"]
    assert "passwd" not in content
    cid = content.split("`")[1]
    assert any(cid in r.getMessage() and "discord mention" in r.getMessage()
               for r in caplog.records)


async def test_roles_by_name_from_the_guild_cache_make_admins(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    from tests.discord.conftest import dispatch_guild
    from tests.discord.payloads import ROLE_ID

    settings.discord.admin_roles = ["Video admins"]
    client = await make_client(settings, recorder)
    dispatch_guild(client, payloads.guild_create(roles={ROLE_ID: "Video admins"}))
    dispatch(client, payloads.slash("ltx-admin", {}, sub="block", users={"user": USER_ID + 4},
                                    roles=(ROLE_ID,)))
    inv = await recorder.next()
    assert inv.user.is_admin and "Video admins" in inv.user.roles and str(ROLE_ID) in inv.user.roles
    assert inv.options == {"sub": "block", "user": f"discord:{USER_ID + 4}"}


MENTION_WORDS = mention_words("<@600000000000000003>")


async def test_mention_command_words_match_the_other_platforms(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    """The words `bot.grammar.leading_command` knows, as Slack mentions and the console read them."""
    client = await _client(make_client, settings, recorder)
    bot = fake.bot_id
    for n, (words, _, _) in enumerate(MENTION_WORDS, start=1):
        dispatch_message(client, payloads.message(content=f"<@{bot}> {words}", mentions=[bot]))
        await recorder.next(n)
    got = [(i.command, i.text) for i in recorder.invocations]
    assert got == [(command, text) for _, command, text in MENTION_WORDS]


async def test_mention_admin_carries_is_admin_from_config(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    from tests.discord.payloads import ADMIN_ID

    settings.discord.admin_users = [ADMIN_ID]
    client = await _client(make_client, settings, recorder)
    bot = fake.bot_id
    dispatch_message(client, payloads.message(content=f"<@{bot}> admin usage users 7", mentions=[bot],
                                              author_id=ADMIN_ID, author_name="boss"))
    dispatch_message(client, payloads.message(content=f"<@{bot}> admin usage", mentions=[bot]))
    other = await recorder.next(2)
    admin = recorder.invocations[0]
    assert (admin.command, admin.text, admin.user.is_admin) == ("admin", "usage users 7", True)
    # Not refused here: the core checks User.is_admin and says who may use it.
    assert (other.command, other.user.is_admin) == ("admin", False)


async def test_mention_extend_replying_to_a_clip_takes_the_clip(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await _client(make_client, settings, recorder)
    bot = fake.bot_id
    clip = payloads.attachment("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    result = payloads.message(author_id=bot, author_name="LTX", bot=True, attachments=[clip])
    dispatch_message(client, payloads.message(content=f"<@{bot}> extend more waves", mentions=[bot],
                                              referenced=result))
    inv = await recorder.next()
    assert (inv.command, inv.text) == ("extend", "more waves")
    assert [a.url for a in inv.attachments] == [clip["url"]]
    a = payloads.attachment("a.png", png_bytes(), "image/png")
    b = payloads.attachment("b.png", png_bytes(), "image/png")
    pair = payloads.message(author_id=USER_ID, attachments=[a, b])
    dispatch_message(client, payloads.message(content=f"<@{bot}> keyframes it blooms", mentions=[bot],
                                              referenced=pair))
    inv = await recorder.next(2)
    assert inv.command == "keyframes" and [x.url for x in inv.attachments] == [a["url"], b["url"]]


def _thread(payloads: Payloads, thread_id: int, parent_id: int) -> dict[str, Any]:
    """A public thread (channel type 11) as Discord sends it in interactions and GET /channels."""
    return {"id": str(thread_id), "type": 11, "guild_id": str(GUILD_ID), "parent_id": str(parent_id),
            "owner_id": str(USER_ID), "name": "boats", "last_message_id": None, "rate_limit_per_user": 0,
            "message_count": 3, "member_count": 2, "flags": 0, "total_message_sent": 3,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                "archive_timestamp": "2025-01-01T00:00:00+00:00"}}


async def test_a_thread_of_an_allowed_channel_is_allowed(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    thread_id, foreign_thread = CHANNEL_ID + 40, CHANNEL_ID + 41
    settings.discord.allowed_channels = [CHANNEL_ID]
    client = await _client(make_client, settings, recorder)

    payloads.channel_id = thread_id
    payload = payloads.slash("quota")
    payload["channel"] = _thread(payloads, thread_id, CHANNEL_ID)
    dispatch(client, payload)
    inv = await recorder.next()
    assert inv.command == "quota" and inv.place.channel == str(thread_id)

    # A thread under a channel that is not allowed is still refused, naming the channel.
    payloads.channel_id = foreign_thread
    payload = payloads.slash("quota")
    payload["channel"] = _thread(payloads, foreign_thread, CHANNEL_ID + 99)
    dispatch(client, payload)
    call = await fake.wait_for(lambda c: c.path == f"/interactions/{payload['id']}/{payload['token']}/callback")
    assert call.body["type"] == 4 and f"<#{CHANNEL_ID}>" in call.body["data"]["content"]

    # A mention in a thread the cache does not know yet: the channel is looked up once.
    fake.add_channel(_thread(payloads, thread_id, CHANNEL_ID))
    payloads.channel_id = thread_id
    bot = fake.bot_id
    dispatch_message(client, payloads.message(content=f"<@{bot}> jobs", mentions=[bot]))
    inv = await recorder.next(2)
    assert inv.command == "jobs" and inv.place.channel == str(thread_id)
    fetched = fake.calls_to("GET", f"/channels/{thread_id}")
    assert [c.path for c in fetched] == [f"/channels/{thread_id}"] and fetched[0].bot_auth
    assert len(recorder.invocations) == 2

"""Platform events -> Invocations, through discord.py's real command tree, view store and modals."""

from __future__ import annotations

from typing import Any

from adapters.discord_bot import LtxClient
from bot.config import Settings
from tests.discord.conftest import ClientFactory, Recorder, dispatch, png_bytes
from tests.discord.fake_api import FakeDiscord
from tests.discord.payloads import CHANNEL_ID, GUILD_ID, USER_ID, Payloads


async def test_login_syncs_commands_once_globally(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder
) -> None:
    await make_client(settings, recorder.handle)
    puts = fake.calls_to("PUT", "/commands")
    assert len(puts) == 1 and puts[0].path == f"/applications/{fake.app_id}/commands"
    assert all(c.bot_auth for c in fake.calls)
    names = {c["name"] for c in fake.synced["global"]}
    assert {"video", "keyframes", "extend", "quota", "jobs", "cancel", "ltx-help", "ltx-admin",
            "Animate image", "Extend video"} <= names
    admin = next(c for c in fake.synced["global"] if c["name"] == "ltx-admin")
    assert int(admin["default_member_permissions"]) == 8  # administrator only, by default


async def test_video_slash_command_defers_and_translates(
    fake: FakeDiscord, make_client: ClientFactory, settings: Settings, recorder: Recorder,
    payloads: Payloads,
) -> None:
    client = await make_client(settings, recorder.handle)
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

"""The moderation log's Block user and Delete video buttons, the Report button, a
server's own pause and /ltx-admin reports on Discord: real discord.py against the fake
REST API, the real core, runner and simulator."""

from __future__ import annotations

import json
from typing import Any

from tests.discord.conftest import dispatch
from tests.discord.payloads import OTHER_CHANNEL_ID, STRANGER_ID, USER_ID
from tests.discord.test_safety import MOD_ID, Live, as_mod, live, settings_set  # noqa: F401


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def mod_button(live: Live, custom_id: str, message: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    return as_mod(live.p.button(custom_id, message, user_id=MOD_ID, user_name="mod"))


async def test_report_then_the_moderators_block_and_delete(live: Live) -> None:  # noqa: F811
    dispatch(live.client, settings_set(live, "mod_log_channel", f"<#{OTHER_CHANNEL_ID}>"))
    await live.note(1)
    dispatch(live.client, live.p.slash("video", {"prompt": "a paper boat", "duration": 1.0}))
    video = await live.video()
    assert "ltx:job:1:report" in custom_ids(video)
    [entry] = live.fake.channel_messages(OTHER_CHANNEL_ID)
    assert custom_ids(entry) == ["ltx:job:1:modblock", "ltx:job:1:moddelete"]

    dispatch(live.client, live.p.button("ltx:job:1:report", video, user_id=STRANGER_ID,
                                        user_name="eve"))
    assert await live.note(2) == "Thank you: job #1 was reported to this server's moderators."
    await live.fake.wait_until(lambda: len(live.fake.channel_messages(OTHER_CHANNEL_ID)) == 2,
                               what="the report in the log")
    report = live.fake.channel_messages(OTHER_CHANNEL_ID)[1]
    assert "Job #1 reported" in json.dumps(report) and f"discord:{STRANGER_ID}" in json.dumps(report)
    assert custom_ids(report) == ["ltx:job:1:modblock", "ltx:job:1:moddelete"]

    # A member without Manage Server gets a plain refusal.
    dispatch(live.client, live.p.button("ltx:job:1:moddelete", entry, user_id=STRANGER_ID,
                                        user_name="eve"))
    assert await live.note(3) == ("Only this server's moderators (its admins) can use the "
                                  "moderation log's buttons.")
    assert live.fake.visible(int(video["id"])) is not None
    dispatch(live.client, mod_button(live, "ltx:job:1:moddelete", entry))
    assert await live.note(4) == "The video of job #1 is deleted."
    assert live.fake.visible(int(video["id"])) is None
    dispatch(live.client, mod_button(live, "ltx:job:1:modblock", report))
    assert (await live.note(5)).startswith(f"alice (discord:{USER_ID}) is blocked in this server")
    dispatch(live.client, live.p.slash("video", {"prompt": "another boat", "duration": 1.0}))
    assert await live.note(6) == "You are blocked from starting jobs in this server."
    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {}, sub="settings", user_id=MOD_ID,
                                              user_name="mod")))
    assert (await live.note(7)).splitlines()[-2:] == [
        f"Blocked in this server (the moderation log's Block user): alice (discord:{USER_ID}).",
        f"To lift a block: admin unblock-here and the user, e.g. admin unblock-here discord:{USER_ID}."]

    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {"days": 3}, sub="reports",
                                              user_id=MOD_ID, user_name="mod")))
    assert (await live.note(8)).splitlines()[1].endswith(f"job #1: reported by eve (discord:{STRANGER_ID})")


async def test_a_server_admin_pauses_their_server(live: Live) -> None:  # noqa: F811
    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {"reason": "quiet hours"}, sub="pause",
                                              user_id=MOD_ID, user_name="mod")))
    assert (await live.note(1)).startswith("Video generation is paused in this server:")
    dispatch(live.client, live.p.slash("video", {"prompt": "a paper boat", "duration": 1.0}))
    assert await live.note(2) == "Video generation is paused by an admin: quiet hours."
    [row] = await live.app.store.pauses([f"discord:{live.p.guild_id}"])
    assert row.by == "mod"
    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {}, sub="resume", user_id=MOD_ID,
                                              user_name="mod")))
    assert await live.note(3) == "Video generation resumes in this server."
    assert await live.app.store.pauses([f"discord:{live.p.guild_id}"]) == []

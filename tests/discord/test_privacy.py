"""forget-me and my-data on Discord: slash commands, the Forget me button, the private
file, through discord.py, the real core and runner, and the fake Discord API."""

from __future__ import annotations

import json
from typing import Any

from adapters.discord_render import button_ids, flatten_message
from tests.discord import test_e2e
from tests.discord.conftest import dispatch, dispatch_guild, dispatch_message
from tests.discord.fake_api import EPHEMERAL
from tests.discord.payloads import USER_ID
from tests.discord.test_e2e import Live, _notes

live = test_e2e.live  # the end-to-end fixture: discord.py on the fake API, the real app

PROMPT = "a zanzibar quokka juggling teacups"


async def _finished(live: Live) -> tuple[dict[str, Any], int]:
    dispatch(live.client, live.p.slash("video", {"prompt": PROMPT}))
    message, job_id = await live.delivered()
    await live.wait_job(job_id)
    return message, job_id


async def test_forget_me_button_deletes_posts_and_scrubs(live: Live) -> None:
    result, job_id = await _finished(live)
    ask = live.p.slash("forget-me")
    dispatch(live.client, ask)
    card_call = await live.fake.wait_for(
        lambda c: isinstance(c.body, dict) and "ltx:job:0:forget" in button_ids(c.body),
        what="the Forget me button")
    card = live.fake.messages[int(card_call.response["id"])]
    assert "forget-me confirm" in flatten_message(card)
    assert card["flags"] & EPHEMERAL  # only the asker sees the card and its button
    # Someone else pressing it forgets nobody.
    dispatch(live.client, live.p.button("ltx:job:0:forget", card, user_id=USER_ID + 50,
                                        user_name="eve"))
    await live.fake.wait_until(lambda: any("type forget-me to ask" in n for n in _notes(live.fake)),
                               what="the refusal")
    assert (await live.app.store.get_job(job_id)).prompt == PROMPT
    dispatch(live.client, live.p.button("ltx:job:0:forget", card))
    await live.fake.wait_until(lambda: any("Forgotten" in n for n in _notes(live.fake)),
                               what="the confirmation")
    assert live.fake.visible(int(result["id"])) is None  # the bot's post of the video
    job = await live.app.store.get_job(job_id)
    assert job.prompt == "" and job.owner_key.startswith("forgotten:")
    assert await live.app.store.get_user(f"discord:{USER_ID}") is None
    assert await live.app.store.audit() == []


async def test_forget_me_confirm_option(live: Live) -> None:
    _, job_id = await _finished(live)
    dispatch(live.client, live.p.slash("forget-me", {"confirm": "confirm"}))
    await live.fake.wait_until(lambda: any("Forgotten" in n for n in _notes(live.fake)),
                               what="the confirmation")
    assert (await live.app.store.get_job(job_id)).prompt == ""


async def test_my_data_is_an_ephemeral_file(live: Live) -> None:
    _, job_id = await _finished(live)
    dispatch(live.client, live.p.slash("my-data"))
    name = f"my-data-{USER_ID}.json"
    call = await live.fake.wait_for(lambda c: any(f.filename == name for f in c.files),
                                    what="the my-data file")
    message = live.fake.messages[int(call.response["id"])]
    assert message["flags"] & EPHEMERAL
    data = json.loads(next(f for f in call.files if f.filename == name).data)
    assert [j["id"] for j in data["jobs"]] == [job_id]
    assert data["jobs"][0]["prompt"] == PROMPT
    assert "token" not in json.dumps(data["jobs"][0]["status_message_json"] or {})


async def test_my_data_by_mention_goes_to_a_direct_message(live: Live) -> None:
    # (No slash command first: a live interaction of this user here would carry the file
    # as an ephemeral followup instead, which is as private.)
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    dispatch_message(live.client, live.p.message(content=f"<@{bot}> my-data", mentions=[bot]))
    name = f"my-data-{USER_ID}.json"
    call = await live.fake.wait_for(lambda c: any(f.filename == name for f in c.files),
                                    what="the my-data file")
    # The fake's DM channel with a user is their id + 7: never the public channel.
    assert call.bot_auth and call.path == f"/channels/{USER_ID + 7}/messages"
    data = json.loads(next(f for f in call.files if f.filename == name).data)
    assert data["user"]["key"] == f"discord:{USER_ID}" and data["jobs"] == []


async def test_forget_me_by_mention_asks_in_a_direct_message(live: Live) -> None:
    """No interaction to answer privately: the card with its button goes to the user's
    DMs, not to the channel where they mentioned the bot."""
    bot = live.fake.bot_id
    dispatch_guild(live.client, live.p.guild_create())
    dispatch_message(live.client, live.p.message(content=f"<@{bot}> forget-me", mentions=[bot]))
    call = await live.fake.wait_for(
        lambda c: isinstance(c.body, dict) and "ltx:job:0:forget" in button_ids(c.body),
        what="the Forget me button")
    assert call.bot_auth and call.path == f"/channels/{USER_ID + 7}/messages"


async def test_admin_forget(live: Live, settings: Any) -> None:
    from tests.discord.payloads import ADMIN_ID

    _, job_id = await _finished(live)
    settings.discord.admin_users = [ADMIN_ID]
    dispatch(live.client, live.p.slash("ltx-admin", {}, sub="forget", users={"user": USER_ID},
                                       user_id=ADMIN_ID, user_name="boss"))
    await live.fake.wait_until(lambda: any("Forgotten: 1 job(s)" in n for n in _notes(live.fake)),
                               what="the admin's confirmation")
    assert (await live.app.store.get_job(job_id)).prompt == ""

"""forget-me on Discord reaches the moderation log: the entry of the user's job is
edited (through the bot's Discord port) to a neutral card with no prompt, name or
buttons. Real discord.py against the fake REST API, the real core and simulator."""

from __future__ import annotations

from adapters.discord_render import flatten_message
from tests.discord.conftest import dispatch
from tests.discord.payloads import OTHER_CHANNEL_ID, USER_ID
from tests.discord.test_moderation import custom_ids
from tests.discord.test_safety import Live, live, settings_set  # noqa: F401

PROMPT = "a zanzibar quokka on a paper boat"


async def test_forget_me_edits_the_log_entry_to_a_neutral_card(live: Live) -> None:  # noqa: F811
    dispatch(live.client, settings_set(live, "mod_log_channel", f"<#{OTHER_CHANNEL_ID}>"))
    await live.note(1)
    dispatch(live.client, live.p.slash("video", {"prompt": PROMPT, "duration": 1.0}))
    await live.video()
    [entry] = live.fake.channel_messages(OTHER_CHANNEL_ID)
    entry_id = int(entry["id"])
    await live.fake.wait_until(lambda: "Job #1 done" in flatten_message(live.fake.messages[entry_id]),
                               what="the entry updated with the result")
    assert PROMPT in flatten_message(live.fake.messages[entry_id])

    dispatch(live.client, live.p.slash("forget-me", {"confirm": "confirm"}))
    await live.fake.wait_until(lambda: "Moderation entry removed" in flatten_message(
        live.fake.messages[entry_id]), what="the neutral entry")
    shown = flatten_message(live.fake.messages[entry_id])
    assert "The user asked the bot to forget them." in shown
    assert PROMPT not in shown and str(USER_ID) not in shown and "alice" not in shown
    assert custom_ids(live.fake.messages[entry_id]) == []

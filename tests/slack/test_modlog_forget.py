"""forget-me on Slack reaches the moderation log: the entry of the user's job is edited
(chat.update through the bot's Slack port) to a neutral card with no prompt, name or
buttons. Real slack-bolt over signed HTTP against the fake Web API."""

from __future__ import annotations

from typing import Any

from tests.slack.payloads import slash_command
from tests.slack.test_e2e import buttons_of
from tests.slack.test_safety import MOD, live, note  # noqa: F401

LOG = "C0009"
PROMPT = "a zanzibar quokka flying a red kite"


async def test_forget_me_edits_the_log_entry_to_a_neutral_card(live: Any) -> None:  # noqa: F811
    fake, sender, _app = live
    await sender.command(slash_command(f"admin settings set mod_log_channel <#{LOG}|mods>", user=MOD))
    await note(fake, MOD, 1)
    await sender.command(slash_command(f"{PROMPT} --seconds 1"))
    assert len(await fake.wait_for(lambda: fake.live_messages(LOG), limit=30)) == 1
    await fake.wait_for(lambda: "Job #1 done" in str(fake.live_messages(LOG)[0]), limit=60)
    assert PROMPT in str(fake.live_messages(LOG)[0])

    await sender.command(slash_command("forget-me confirm"))
    await fake.wait_for(lambda: "Moderation entry removed" in str(fake.live_messages(LOG)[0]),
                        limit=30)
    [shown] = fake.live_messages(LOG)
    assert "The user asked the bot to forget them." in str(shown)
    assert PROMPT not in str(shown) and "U0001" not in str(shown) and "alice" not in str(shown)
    assert buttons_of(shown) == {}

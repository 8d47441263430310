"""`/ltx admin pause ...` and `/ltx admin resume` on Slack (the text path), through the
real core: a paused bot refuses a generation plainly, nothing fetched or started."""

from __future__ import annotations

from bot.config import Settings
from tests.slack.payloads import app_mention, slash_command
from tests.slack.test_e2e import Live, live, png  # noqa: F401 (the fixture)


async def test_admin_pause_and_resume_through_the_text_path(live: Live, settings: Settings) -> None:  # noqa: F811
    settings.slack.admin_users = ["U0ADMIN"]
    fake = live.fake
    await live.sender.command(slash_command("admin pause upgrading fal key", user="U0ADMIN"))
    await fake.wait_for(lambda: [e for e in fake.ephemerals if "paused everywhere" in e.text])
    [row] = await live.app.store.pauses()
    assert (row.kind, row.reason) == ("admin", "upgrading fal key")

    # A user's mention with an image: refused before the image is downloaded.
    image = fake.add_user_file("boat.png", png(), "image/png")
    await live.sender.event(app_mention("<@UBOT> the boat sails", [image]))
    await live.sender.command(slash_command("a red kite over hills"))
    refusal = "Video generation is paused by an admin: upgrading fal key."
    await fake.wait_for(lambda: [e for e in fake.ephemerals if e.text == refusal])
    await live.runner.adapter.idle()
    assert fake.downloads == []
    assert await live.app.store.list_jobs("slack:U0001") == []

    # Not an admin: refused, the pause stays.
    await live.sender.command(slash_command("admin resume"))
    await fake.wait_for(lambda: [e for e in fake.ephemerals if "for the bot's admins" in e.text])
    assert len(await live.app.store.pauses()) == 1

    await live.sender.command(slash_command("admin resume", user="U0ADMIN"))
    await fake.wait_for(lambda: [e for e in fake.ephemerals if "resumes" in e.text])
    assert await live.app.store.pauses() == []

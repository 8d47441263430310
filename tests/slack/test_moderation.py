"""The moderation log's Block user and Delete video buttons, the Report button, a
workspace's own pause and `/ltx admin reports` on Slack: real slack-bolt over signed HTTP
against the fake Web API, the real core and simulator."""

from __future__ import annotations

from typing import Any

from tests.slack.payloads import block_actions, slash_command
from tests.slack.test_e2e import buttons_of
from tests.slack.test_safety import MOD, live, note  # noqa: F401

LOG = "C0009"


async def test_report_then_a_moderator_blocks_and_deletes(live: Any) -> None:  # noqa: F811
    fake, sender, app = live
    await sender.command(slash_command(f"admin settings set mod_log_channel <#{LOG}|mods>", user=MOD))
    await note(fake, MOD, 1)
    await sender.command(slash_command("a red kite --seconds 1"))
    result = await fake.wait_for(
        lambda: [m for m in fake.live_messages("C0001") if "ltx_report" in buttons_of(m)], limit=60)
    assert buttons_of(result[0])["ltx_report"] == "1"
    [entry] = await fake.wait_for(lambda: fake.live_messages(LOG), limit=30)
    assert list(buttons_of(entry)) == ["ltx_modblock", "ltx_moddelete"]

    await sender.interactive(block_actions("ltx_report", "1", user="U0OTHER", thread_ts=None))
    assert await note(fake, "U0OTHER", 1) == ("Thank you: job #1 was reported to this "
                                              "workspace's moderators.")
    logged = await fake.wait_for(lambda: fake.live_messages(LOG)[1:], limit=30)
    assert "Job #1 reported" in str(logged[0]) and "slack:U0OTHER" in str(logged[0])

    # Not a workspace admin: refused; a workspace admin (users.info says so): done.
    await sender.interactive(block_actions("ltx_moddelete", "1", user="U0OTHER", channel=LOG,
                                           thread_ts=None))
    assert await note(fake, "U0OTHER", 2) == ("Only this workspace's moderators (its admins) can "
                                              "use the moderation log's buttons.")
    assert not result[0].deleted
    await sender.interactive(block_actions("ltx_moddelete", "1", user=MOD, channel=LOG,
                                           thread_ts=None))
    assert await note(fake, MOD, 2) == "The video of job #1 is deleted."
    await fake.wait_for(lambda: result[0].deleted, limit=10)
    await sender.interactive(block_actions("ltx_modblock", "1", user=MOD, channel=LOG,
                                           thread_ts=None))
    assert (await note(fake, MOD, 3)).startswith("alice (slack:U0001) is blocked in this workspace")
    await sender.command(slash_command("a red kite --seconds 1"))
    assert await note(fake, "U0001", 1) == "You are blocked from starting jobs in this workspace."
    assert len(await app.store.list_jobs("slack:U0001")) == 1
    await sender.command(slash_command("admin settings show", user=MOD))
    assert (await note(fake, MOD, 4)).splitlines()[-2:] == [
        "Blocked in this workspace (the moderation log's Block user): alice (slack:U0001).",
        "To lift a block: admin unblock-here and the user, e.g. admin unblock-here slack:U0001."]

    await sender.command(slash_command("admin reports", user=MOD))
    assert (await note(fake, MOD, 5)).splitlines()[1].endswith(
        "job #1: reported by alice (slack:U0OTHER)")


async def test_a_workspace_admin_pauses_their_workspace(live: Any) -> None:  # noqa: F811
    fake, sender, app = live
    await sender.command(slash_command("admin pause quiet hours", user=MOD))
    assert (await note(fake, MOD, 1)).startswith("Video generation is paused in this workspace:")
    await sender.command(slash_command("a red kite --seconds 1"))
    assert await note(fake, "U0001", 1) == "Video generation is paused by an admin: quiet hours."
    await sender.command(slash_command("admin resume", user=MOD))
    assert await note(fake, MOD, 2) == "Video generation resumes in this workspace."
    assert await app.store.list_jobs("slack:U0001") == []

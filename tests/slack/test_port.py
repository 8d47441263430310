"""SlackPort against the fake Web API: real slack_sdk client, real HTTP, recorded calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from slack_sdk.errors import SlackApiError

from adapters.slack_app import SlackAdapter
from adapters.slack_port import SlackPort
from adapters.slack_translate import error_code
from bot.config import Settings
from bot.errors import UserError
from bot.ports import Action, Invocation, MessageRef, Place, StatusCard, User
from bot.throttle import EditThrottle, edit_interval
from tests.slack.fake_api import FakeSlack

PLACE = Place("slack", "C0001", "T0001", thread="1700000001.000100")
USER = User("slack", "U0001", "alice")


async def _unused(inv: Invocation, port: object) -> None:
    raise AssertionError("port tests do not dispatch")


@pytest.fixture
async def port(slack_settings: Settings) -> AsyncIterator[SlackPort]:
    slack_settings.slack.upload_timeout_seconds = 123
    adapter = SlackAdapter(slack_settings, _unused, min_edit_interval=0.3)
    yield adapter.port
    await adapter.close()


def card(title: str, **kw: object) -> StatusCard:
    return StatusCard(title=title, job_id=3, **kw)  # type: ignore[arg-type]


async def test_post_goes_into_the_thread_with_blocks(port: SlackPort, fake_slack: FakeSlack) -> None:
    ref = await port.post(PLACE, card("Queued", actions=[Action("cancel", 3, "Cancel")]))
    msg = fake_slack.messages[("C0001", ref.id)]
    assert msg.thread_ts == PLACE.thread
    assert msg.text.startswith("Queued")  # fallback text for notifications
    assert msg.blocks[-1]["elements"][0]["action_id"] == "ltx_cancel"
    assert ref.extra["thread_ts"] == PLACE.thread
    call = fake_slack.named("chat.postMessage")[0]
    assert call.headers["Authorization"] == f"Bearer {fake_slack.bot_token}"


def throttle_for(port: SlackPort, ref: MessageRef) -> EditThrottle[StatusCard]:
    """The core's throttle in front of the port, paced by the port's traits (0.3 s here)."""
    throttle: EditThrottle[StatusCard] = EditThrottle(
        lambda c: port.edit(ref, c), edit_interval(0.0, port.traits))
    throttle.sent()
    return throttle


async def test_rapid_edits_are_coalesced_to_the_last_state(port: SlackPort,
                                                          fake_slack: FakeSlack) -> None:
    ref = await port.post(PLACE, card("step 0"))
    throttle = throttle_for(port, ref)
    for i in range(1, 10):
        throttle.update(card(f"step {i}", progress=i / 10))
    await fake_slack.wait_for(lambda: fake_slack.named("chat.update"))
    updates = fake_slack.named("chat.update")
    assert len(updates) == 1
    assert updates[0].params["text"].startswith("step 9")


async def test_final_edit_lands_after_pending_progress(port: SlackPort,
                                                      fake_slack: FakeSlack) -> None:
    ref = await port.post(PLACE, card("step 0"))
    throttle = throttle_for(port, ref)
    for i in range(1, 6):
        throttle.update(card(f"step {i}", progress=i / 6))
    await throttle.finish(card("Done", final=True, tone="success"))
    updates = fake_slack.named("chat.update")
    assert [u.params["text"].split("\n")[0] for u in updates][-1] == "Done"
    assert len(updates) == 1  # the pending progress was superseded, not sent late
    assert fake_slack.messages[("C0001", ref.id)].text.startswith("Done")


async def test_edit_of_a_deleted_message_posts_a_fresh_one(port: SlackPort,
                                                           fake_slack: FakeSlack) -> None:
    ref = await port.post(PLACE, card("Queued"))
    fake_slack.messages[("C0001", ref.id)].deleted = True
    new = await port.edit(ref, card("Done", final=True))
    assert new.id != ref.id
    fresh = fake_slack.messages[("C0001", new.id)]
    assert fresh.text.startswith("Done") and fresh.thread_ts == PLACE.thread


async def test_send_video_uploads_into_thread_then_buttons(port: SlackPort, fake_slack: FakeSlack,
                                                          tmp_path: Path) -> None:
    video = tmp_path / "ltx-3.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000)
    actions = [Action(k, 3, k.title()) for k in ("reroll", "extend", "continue", "delete")]
    ref = await port.send_video(PLACE, video, card("Job #3 done", lines=["seed 42"], final=True,
                                                   actions=actions))
    methods = [c.method for c in fake_slack.calls]
    assert methods[:4] == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal",
                           "chat.postMessage"]
    get_url = fake_slack.named("files.getUploadURLExternal")[0]
    assert get_url.params["filename"] == "ltx-3.mp4" and int(get_url.params["length"]) == 5012
    uploaded = fake_slack.files[ref.extra["files"][0]]
    assert uploaded.data == video.read_bytes()
    assert uploaded.thread_ts == PLACE.thread and uploaded.channel == "C0001"
    assert "seed 42" in (uploaded.initial_comment or "")
    buttons = fake_slack.messages[("C0001", ref.id)]
    assert buttons.thread_ts == PLACE.thread
    ids = [e["action_id"] for e in buttons.blocks[-1]["elements"]]
    assert ids == ["ltx_reroll", "ltx_extend", "ltx_continue", "ltx_delete"]
    assert port.upload_client.timeout == 123 and port.client.timeout == 30

    await port.delete(ref)
    assert uploaded.deleted and buttons.deleted
    await port.delete(ref)  # a second press changes nothing and raises nothing


async def test_send_image_without_actions_returns_the_file(port: SlackPort,
                                                           fake_slack: FakeSlack,
                                                           tmp_path: Path) -> None:
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(b"\xff\xd8\xff" + b"j" * 100)
    ref = await port.send_image(PLACE, poster, card("Too large", final=True))
    assert ref.extra["kind"] == "file" and ref.id in fake_slack.files
    assert not fake_slack.named("chat.postMessage")
    assert await port.edit(ref, card("ignored")) == ref
    await port.delete(ref)
    assert fake_slack.files[ref.id].deleted
    assert not fake_slack.named("chat.delete")


async def test_rate_limited_calls_are_retried(port: SlackPort, fake_slack: FakeSlack) -> None:
    fake_slack.inject("chat.postMessage", 429, count=1, retry_after=0)
    ref = await port.post(PLACE, card("Queued"))
    assert len(fake_slack.named("chat.postMessage")) == 2
    assert ("C0001", ref.id) in fake_slack.messages


async def test_tell_is_ephemeral_then_falls_back_to_response_url(port: SlackPort,
                                                                 fake_slack: FakeSlack) -> None:
    await port.tell(USER, PLACE, "12 credits left")
    note = fake_slack.ephemerals[-1]
    assert (note.user, note.channel, note.text, note.thread_ts) == (
        "U0001", "C0001", "12 credits left", PLACE.thread)

    fake_slack.outside.add("C0OUT")  # the bot is not in this channel: postEphemeral refuses
    elsewhere = Place("slack", "C0OUT", "T0001")
    # No response URL known (another process took the command): a DM from the app.
    await port.tell(USER, elsewhere, "by DM")
    dm = fake_slack.live_messages()[-1]
    assert (dm.channel, dm.text) == ("U0001", "by DM")
    fake_slack.outside.add("U0001")  # and when even that is refused, the failure surfaces
    with pytest.raises(SlackApiError):
        await port.tell(USER, elsewhere, "nope")
    fake_slack.outside.discard("U0001")
    port.remember_response_url("U0001", "C0OUT", f"{fake_slack.url}/response/r1")
    await port.tell(USER, elsewhere, "via response url")
    assert fake_slack.responses[-1] == {"rid": "r1", "text": "via response url",
                                        "response_type": "ephemeral", "replace_original": False}


async def test_post_where_the_bot_is_not_a_member_is_a_user_error(port: SlackPort,
                                                                  fake_slack: FakeSlack) -> None:
    fake_slack.outside.add("C0OUT")
    with pytest.raises(UserError, match="/invite"):
        await port.post(Place("slack", "C0OUT", "T0001"), card("Queued"))


def test_upload_limit_comes_from_settings(port: SlackPort) -> None:
    assert port.upload_limit(PLACE) == 100 * 1024 * 1024


@pytest.mark.parametrize(("configured", "expected"), [(0.0, 3.0), (1.0, 3.0), (5.0, 5.0)])
async def test_edits_of_one_message_are_at_least_3_seconds_apart(
        slack_settings: Settings, configured: float, expected: float) -> None:
    """The same floor Discord's port keeps: `jobs.edit_interval_seconds` can only slow it."""
    slack_settings.jobs.edit_interval_seconds = configured
    adapter = SlackAdapter(slack_settings, _unused)
    try:
        assert edit_interval(configured, adapter.port.traits) == expected
    finally:
        await adapter.close()



def test_an_answer_that_is_not_slack_json_has_no_error_code() -> None:
    assert error_code(SlackApiError("bad gateway", SimpleNamespace(data=b"<html>502</html>"))) == ""
    assert error_code(SlackApiError("no", SimpleNamespace(data={"ok": False, "error": "not_in_channel"}))
                  ) == "not_in_channel"


async def test_a_note_is_cut_to_slacks_limit(port: SlackPort, fake_slack: FakeSlack) -> None:
    """Past 40,000 characters Slack answers msg_too_long: a note is cut to 4,000 instead."""
    await port.tell(USER, PLACE, "x" * 100_000)
    [note] = fake_slack.ephemerals
    assert len(note.text) == 4000 and note.text.endswith("…")


def test_a_prompt_form_title_fits_slacks_24_characters() -> None:
    from adapters.slack_render import ModalMeta, prompt_modal

    view = prompt_modal("continue", 2**63 - 1, ModalMeta(channel="C0001"))
    assert len(view["title"]["text"]) <= 24

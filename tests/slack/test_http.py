"""Signed Slack requests over real HTTP to the adapter in HTTP mode, in Slack's payload shapes.

The core here is a RecordingCore: these tests are about what the adapter hands
the core and what it does on Slack, not about generation (see test_e2e.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.slack_app import NO_MEDIA, SlackAdapter
from bot.config import Settings
from bot.ports import ChatPort, Invocation
from tests.mention_words import mention_words
from tests.slack.conftest import SIGNING_SECRET, RecordingCore, slack_settings_for
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import (
    SignedSender,
    app_mention,
    block_actions,
    form_values,
    message_shortcut,
    slash_command,
    view_submission,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 64


async def settle(adapter: SlackAdapter) -> None:
    await adapter.idle()


async def test_slash_command_becomes_a_video_invocation(adapter: SlackAdapter, sender: SignedSender,
                                                        core: RecordingCore,
                                                        fake_slack: FakeSlack) -> None:
    resp = await sender.command(slash_command("a paper boat --seconds 4",
                                              response_url=f"{fake_slack.url}/response/r1"))
    assert resp.status_code == 200
    await settle(adapter)
    [inv] = core.invocations
    assert (inv.command, inv.text) == ("video", "a paper boat --seconds 4")
    assert (inv.user.platform, inv.user.id, inv.user.name) == ("slack", "U0001", "alice")
    assert (inv.place.channel, inv.place.workspace, inv.place.thread) == ("C0001", "T0001", None)
    assert not inv.attachments


@pytest.mark.parametrize(("text", "command", "rest"), [
    ("quota", "quota", ""), ("jobs", "jobs", ""), ("cancel 12", "cancel", "12"),
    ("help", "help", ""), ("quote a cat --seconds 8", "quote", "a cat --seconds 8"),
    ("admin grant U2 100", "admin", "grant U2 100"),
])
async def test_sub_commands(adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
                            text: str, command: str, rest: str) -> None:
    assert (await sender.command(slash_command(text))).status_code == 200
    await settle(adapter)
    assert [(i.command, i.text) for i in core.invocations] == [(command, rest)]


@pytest.mark.parametrize("text", ["", "animate"])
async def test_bare_command_opens_the_modal_with_a_file_picker(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore, fake_slack: FakeSlack,
        text: str) -> None:
    payload = slash_command(text)
    assert (await sender.command(payload)).status_code == 200
    await settle(adapter)
    assert not core.invocations
    [call] = fake_slack.named("views.open")
    assert call.params["trigger_id"] == payload["trigger_id"]
    view = fake_slack.views[-1]
    assert view["blocks"][0]["element"]["type"] == "file_input"
    assert json.loads(view["private_metadata"]) == {"c": "C0001", "w": "T0001"}


async def test_mention_with_files_resolves_stubs_and_threads_the_answer(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
        fake_slack: FakeSlack) -> None:
    first = fake_slack.add_user_file("start.png", PNG, "image/png")
    stub = fake_slack.add_user_file("end.png", PNG, "image/png", partial=True)
    envelope = app_mention("<@UBOT> the cat jumps --seconds 4", [first, stub],
                           ts="1700000001.000200")
    assert (await sender.event(envelope)).status_code == 200
    await settle(adapter)
    [inv] = core.invocations
    assert (inv.command, inv.text) == ("keyframes", "the cat jumps --seconds 4")
    assert inv.place.thread == "1700000001.000200"
    assert inv.event_id == envelope["event_id"]
    assert inv.reply_to is not None and inv.reply_to.id == "1700000001.000200"
    assert [a.filename for a in inv.attachments] == ["start.png", "end.png"]
    assert all(a.kind == "image" and a.content_type == "image/png" for a in inv.attachments)
    assert inv.attachments[0].url == first["url_private_download"]
    assert inv.attachments[1].url.endswith(f"-{stub['id']}/download/end.png")  # from files.info
    assert [c.params["file"] for c in fake_slack.named("files.info")] == [stub["id"]]
    cred = inv.attachments[0].credential
    assert cred is not None and cred.value == f"Bearer {fake_slack.bot_token}"
    assert cred.allows("files.slack.com") and cred.allows("127.0.0.1")


MENTION_WORDS = mention_words("<@U0002>")


async def test_mention_command_words_match_the_other_platforms(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore) -> None:
    """The words `bot.grammar.leading_command` knows, as Discord mentions and the console read them."""
    for words, _, _ in MENTION_WORDS:
        assert (await sender.event(app_mention(f"<@UBOT> {words}"))).status_code == 200
        await settle(adapter)  # one at a time, so the order is the order sent
    assert [(i.command, i.text) for i in core.invocations] == [(c, t) for _, c, t in MENTION_WORDS]


async def test_mention_extend_with_a_clip_and_admin_from_config(
        make_adapter: Callable[..., Any], core: RecordingCore, fake_slack: FakeSlack) -> None:
    adapter, sender = await make_adapter(admin_users=["U0ADMIN"])
    clip = fake_slack.add_user_file("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    for envelope in (app_mention("<@UBOT> extend more waves", [clip]),
                     app_mention("<@UBOT> admin usage users 7", user="U0ADMIN"),
                     app_mention("<@UBOT> admin usage", user="U0001")):
        await sender.event(envelope)
        await settle(adapter)
    extend, admin, other = core.invocations
    assert (extend.command, extend.text, [a.kind for a in extend.attachments]) == (
        "extend", "more waves", ["video"])
    assert (admin.command, admin.text, admin.user.is_admin) == ("admin", "usage users 7", True)
    # Not refused here: the core checks User.is_admin and says who may use it.
    assert (other.command, other.user.is_admin) == ("admin", False)


async def test_mention_inside_a_thread_stays_in_that_thread(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
        fake_slack: FakeSlack) -> None:
    clip = fake_slack.add_user_file("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    await sender.event(app_mention("<@UBOT> keep going --extend", [clip], ts="1700000009.1",
                                   thread_ts="1700000001.5"))
    await settle(adapter)
    [inv] = core.invocations
    assert (inv.command, inv.place.thread) == ("extend", "1700000001.5")


async def test_retried_event_starts_no_second_job(adapter: SlackAdapter, sender: SignedSender,
                                                  core: RecordingCore) -> None:
    envelope = app_mention("<@UBOT> a boat", event_id="Ev0RETRY")
    assert (await sender.event(envelope)).status_code == 200
    assert (await sender.event(envelope, retry_num=1)).status_code == 200
    assert (await sender.event(envelope, retry_num=2)).status_code == 200
    await settle(adapter)
    assert [i.event_id for i in core.invocations] == ["Ev0RETRY"]
    # a different event is still welcome
    await sender.event(app_mention("<@UBOT> a train", event_id="Ev0OTHER"))
    await settle(adapter)
    assert [i.text for i in core.invocations] == ["a boat", "a train"]


@pytest.mark.parametrize("tamper", ["signature", "body", "stale"])
async def test_bad_or_stale_signature_is_refused(adapter: SlackAdapter, sender: SignedSender,
                                                 core: RecordingCore, fake_slack: FakeSlack,
                                                 tamper: str) -> None:
    body = json.dumps(app_mention("<@UBOT> a boat"))
    if tamper == "signature":
        resp = await sender.send(body, "application/json", signature="v0=" + "0" * 64)
    elif tamper == "body":
        ts = str(int(time.time()))
        sig = sender.verifier.generate_signature(timestamp=ts, body=body)
        resp = await sender.send(body.replace("a boat", "a bomb"), "application/json",
                                 timestamp=int(ts), signature=sig)
    else:
        resp = await sender.send(body, "application/json", timestamp=int(time.time()) - 600)
    assert resp.status_code == 401
    await settle(adapter)
    assert core.invocations == []
    assert [c.method for c in fake_slack.calls] == ["auth.test"]  # start()'s check only


async def test_message_shortcut_opens_modal_and_submission_runs_in_the_thread(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
        fake_slack: FakeSlack) -> None:
    image = fake_slack.add_user_file("cat.png", PNG, "image/png")
    message = {"type": "message", "user": "U0002", "ts": "1700000004.000100", "text": "look",
               "files": [image]}
    assert (await sender.interactive(message_shortcut(message))).status_code == 200
    await settle(adapter)
    view = fake_slack.views[-1]
    assert "files" not in [b.get("block_id") for b in view["blocks"]]
    meta = json.loads(view["private_metadata"])
    assert meta == {"c": "C0001", "t": "1700000004.000100", "f": [image["id"]], "w": "T0001"}
    assert not core.invocations

    values = form_values("the cat yawns", model="ltx-2", seconds="4", aspect="9:16", audio=True)
    resp = await sender.interactive(view_submission(view, values))
    assert resp.status_code == 200 and resp.content in (b"", b"{}")  # the modal just closes
    await settle(adapter)
    [inv] = core.invocations
    assert inv.command == "video"
    assert inv.text == "the cat yawns --model ltx-2 --seconds 4 --aspect 9:16 --audio"
    assert inv.place.thread == "1700000004.000100"
    assert [a.filename for a in inv.attachments] == ["cat.png"]
    assert inv.attachments[0].url == image["url_private_download"]


async def test_shortcut_on_a_message_without_media_explains(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
        fake_slack: FakeSlack) -> None:
    message = {"type": "message", "user": "U0002", "ts": "1700000004.2", "text": "just words"}
    await sender.interactive(message_shortcut(message))
    await settle(adapter)
    assert not fake_slack.views and not core.invocations
    assert [e.text for e in fake_slack.ephemerals] == [NO_MEDIA]


async def test_modal_file_input_submission(adapter: SlackAdapter, sender: SignedSender,
                                           core: RecordingCore, fake_slack: FakeSlack) -> None:
    await sender.command(slash_command(""))
    await settle(adapter)
    view = fake_slack.views[-1]
    picked = fake_slack.add_user_file("dog.jpg", PNG, "image/jpeg")
    await sender.interactive(view_submission(view, form_values("the dog runs", files=[picked])))
    await settle(adapter)
    [inv] = core.invocations
    assert (inv.command, inv.text, inv.place.thread) == ("video", "the dog runs", None)
    assert [a.filename for a in inv.attachments] == ["dog.jpg"]


async def test_empty_prompt_is_refused_in_the_modal(adapter: SlackAdapter, sender: SignedSender,
                                                    core: RecordingCore,
                                                    fake_slack: FakeSlack) -> None:
    await sender.command(slash_command(""))
    await settle(adapter)
    resp = await sender.interactive(view_submission(fake_slack.views[-1], form_values("  ")))
    assert resp.json() == {"response_action": "errors",
                           "errors": {"prompt": "Describe what should happen."}}
    await settle(adapter)
    assert not core.invocations


@pytest.mark.parametrize("kind", ["cancel", "reroll", "delete"])
async def test_buttons_become_actions(adapter: SlackAdapter, sender: SignedSender,
                                      core: RecordingCore, kind: str) -> None:
    assert (await sender.interactive(block_actions(f"ltx_{kind}", "42"))).status_code == 200
    await settle(adapter)
    [inv] = core.invocations
    assert (inv.command, inv.options, inv.text) == ("action", {"action": kind, "job_id": 42}, "")
    assert (inv.place.channel, inv.place.thread) == ("C0001", "1700000001.000100")


@pytest.mark.parametrize("kind", ["extend", "continue"])
async def test_extend_and_continue_ask_for_a_prompt_first(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore, fake_slack: FakeSlack,
        kind: str) -> None:
    await sender.interactive(block_actions(f"ltx_{kind}", "42"))
    await settle(adapter)
    assert not core.invocations
    view = fake_slack.views[-1]
    assert view["callback_id"] == "ltx_prompt_modal"
    values = {"prompt": {"prompt": {"type": "plain_text_input", "value": "and then it flies"}}}
    await sender.interactive(view_submission(view, values))
    await settle(adapter)
    [inv] = core.invocations
    assert inv.command == "action" and inv.options == {"action": kind, "job_id": 42}
    assert inv.text == "and then it flies"
    assert inv.place.thread == "1700000001.000100"


async def test_foreign_buttons_are_ignored(adapter: SlackAdapter, sender: SignedSender,
                                           core: RecordingCore) -> None:
    await sender.interactive(block_actions("ltx_explode", "42"))
    await sender.interactive(block_actions("ltx_reroll", "not-a-job"))
    await settle(adapter)
    assert not core.invocations


@pytest.fixture
async def make_adapter(fake_slack: FakeSlack, tmp_path: Path, core: RecordingCore
                       ) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[SlackAdapter, SignedSender]] = []

    async def make(**slack: Any) -> tuple[SlackAdapter, SignedSender]:
        ad = SlackAdapter(slack_settings_for(fake_slack, tmp_path, **slack), core)
        await ad.start()
        assert ad.url is not None
        made.append((ad, SignedSender(ad.url, SIGNING_SECRET)))
        return made[-1]

    yield make
    for ad, s in made:
        await s.close()
        await ad.close()


async def test_channels_and_workspaces_outside_the_allow_lists_are_refused(
        make_adapter: Callable[..., Any], core: RecordingCore, fake_slack: FakeSlack) -> None:
    adapter, sender = await make_adapter(allowed_channels=["C0OK"], allowed_workspaces=["T0001"])
    resp = await sender.command(slash_command("a boat"))
    assert "<#C0OK>" in resp.json()["text"]
    await sender.event(app_mention("<@UBOT> a boat"))
    await sender.interactive(block_actions("ltx_reroll", "1"))
    await settle(adapter)
    assert not core.invocations
    assert len(fake_slack.ephemerals) == 2 and all("<#C0OK>" in e.text for e in fake_slack.ephemerals)

    resp = await sender.command(slash_command("a boat", team="T0BAD", channel="C0OK"))
    assert "slack.allowed_workspaces" in resp.json()["text"]
    await sender.command(slash_command("a boat", channel="C0OK"))
    await settle(adapter)
    assert [i.place.channel for i in core.invocations] == ["C0OK"]


async def test_admins_from_settings(make_adapter: Callable[..., Any], core: RecordingCore) -> None:
    adapter, sender = await make_adapter(admin_users=["U0001"])
    await sender.command(slash_command("admin usage"))
    await sender.command(slash_command("admin usage", user="U0002"))
    await settle(adapter)
    assert [i.user.is_admin for i in core.invocations] == [True, False]


async def test_unexpected_failure_shows_a_correlation_id(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore, fake_slack: FakeSlack,
        caplog: pytest.LogCaptureFixture) -> None:
    async def boom(inv: Invocation, port: ChatPort) -> None:
        raise RuntimeError("secret internals xoxb-should-not-show")

    core.then = boom
    await sender.command(slash_command("a boat"))
    await settle(adapter)
    [note] = fake_slack.ephemerals
    assert "error id `" in note.text and "internals" not in note.text
    cid = note.text.split("`")[1]
    assert any(cid in r.getMessage() for r in caplog.records)


async def test_tokens_and_secret_never_logged(adapter: SlackAdapter, sender: SignedSender,
                                              slack_settings: Settings, fake_slack: FakeSlack,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    image = fake_slack.add_user_file("cat.png", PNG, "image/png", partial=True)
    await sender.event(app_mention("<@UBOT> a cat", [image]))
    await sender.command(slash_command("a boat"))
    await sender.send("{}", "application/json", signature="v0=bad")
    await settle(adapter)
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert fake_slack.bot_token not in text
    assert SIGNING_SECRET not in text


async def test_url_verification_challenge(adapter: SlackAdapter, sender: SignedSender) -> None:
    resp = await sender.event({"token": "x", "challenge": "ch4llenge", "type": "url_verification"})
    assert resp.status_code == 200 and resp.json() == {"challenge": "ch4llenge"}


async def test_failed_modal_open_shows_a_correlation_id(adapter: SlackAdapter,
                                                        sender: SignedSender,
                                                        fake_slack: FakeSlack) -> None:
    fake_slack.inject("views.open", 500, count=1)
    await sender.command(slash_command(""))
    await settle(adapter)
    [note] = fake_slack.ephemerals
    assert "error id `" in note.text


async def test_listener_failure_is_reported_with_an_id(adapter: SlackAdapter, sender: SignedSender,
                                                       core: RecordingCore,
                                                       fake_slack: FakeSlack) -> None:
    payload = message_shortcut({"ts": "1.2"})
    payload["message"] = "not an object"  # a shape the listener cannot read
    resp = await sender.interactive(payload)
    assert resp.status_code == 500
    await settle(adapter)
    [note] = fake_slack.ephemerals
    assert note.user == "U0001" and "error id `" in note.text
    assert not core.invocations


async def test_start_fails_fast_on_a_bad_token(fake_slack: FakeSlack, tmp_path: Path,
                                               core: RecordingCore) -> None:
    settings = slack_settings_for(fake_slack, tmp_path, bot_token="xoxb-wrong")
    adapter = SlackAdapter(settings, core)
    with pytest.raises(ValueError, match="invalid_auth"):
        await adapter.start()
    await adapter.close()
    assert "xoxb-wrong" not in repr(settings)


async def test_configured_command_name_is_used(make_adapter: Callable[..., Any],
                                               core: RecordingCore) -> None:
    adapter, sender = await make_adapter(command="video")
    await sender.command(slash_command("a kite", command="/video"))
    await sender.command(slash_command("a kite", command="/ltx"))  # not ours any more
    await settle(adapter)
    assert [i.text for i in core.invocations] == ["a kite"]

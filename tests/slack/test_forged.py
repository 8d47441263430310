"""Forged, malformed and replayed requests to the adapter's HTTP endpoint (HTTP mode).

A request that fails signature verification for any reason is refused with 401
before anything in its body is read: nothing is posted to the user or channel it
names, and no traceback is logged. A correctly signed body that is not a Slack
payload gets 400, also silently. A signed interaction sent again is acknowledged
and does nothing, also after a restart (the claim is in the store).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from adapters.slack_app import SlackAdapter
from tests.slack.conftest import SIGNING_SECRET, RecordingCore, slack_settings_for
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import (
    SignedSender,
    block_actions,
    form_values,
    message_shortcut,
    slash_command,
    view_submission,
)

FORM = "application/x-www-form-urlencoded"


def trap() -> bytes:
    """A body naming a real user and channel, in a shape the listener fails on: if it got
    past verification, the error handler would post an error id to U0001 in C0001."""
    payload = message_shortcut({"ts": "1.2"})
    payload["message"] = "not an object"
    return urlencode({"payload": json.dumps(payload)}).encode()


def nothing_happened(fake: FakeSlack, core: RecordingCore, caplog: pytest.LogCaptureFixture) -> None:
    assert [c.method for c in fake.calls] == ["auth.test"]  # start()'s check only
    assert not fake.ephemerals and not fake.views and not core.invocations
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


def forged(kind: str, sender: SignedSender) -> tuple[bytes, dict[str, str]]:
    raw, now = trap(), int(time.time())
    headers = {"Content-Type": FORM}
    if kind == "undecodable body":
        raw = b"payload=\xff\xfe" + raw
    if kind == "unknown charset":
        headers["Content-Type"] = FORM + "; charset=x-no-such-charset"
    stamp = {"non-numeric timestamp": "soon", "signed non-numeric timestamp": "17e8",
             "plus-signed timestamp": f"+{now}", "stale timestamp": str(now - 301),
             "future timestamp": str(now + 400), "empty timestamp": ""}.get(kind, str(now))
    signature = {"bad signature": "v0=" + "0" * 64, "empty signature": "",
                 "signature of another body": sender.sign(raw + b"x", stamp),
                 "non-numeric timestamp": "v0=abc"}.get(kind, sender.sign(raw, stamp))
    if kind == "undecodable body" or kind == "unknown charset":
        signature = "v0=" + "1" * 64
    if kind != "missing timestamp":
        headers["X-Slack-Request-Timestamp"] = stamp
    if kind != "missing signature":
        headers["X-Slack-Signature"] = signature
    return raw, headers


FORGERIES = ["missing timestamp", "non-numeric timestamp", "signed non-numeric timestamp",
             "plus-signed timestamp", "empty timestamp", "stale timestamp", "future timestamp",
             "bad signature", "empty signature", "missing signature", "signature of another body",
             "undecodable body", "unknown charset"]


@pytest.mark.parametrize("kind", FORGERIES)
async def test_a_request_that_fails_verification_gets_401_and_nothing_is_posted(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore, fake_slack: FakeSlack,
        caplog: pytest.LogCaptureFixture, kind: str) -> None:
    caplog.set_level("INFO")
    raw, headers = forged(kind, sender)
    resp = await sender.post(raw, headers)
    await adapter.idle()
    assert resp.status_code == 401, resp.text
    nothing_happened(fake_slack, core, caplog)


def animate_form(metadata: Any, callback: str = "ltx_animate_modal") -> bytes:
    view = {"type": "modal", "callback_id": callback, "private_metadata": metadata, "blocks": []}
    body = view_submission(view, form_values("a fox runs"))
    return urlencode({"payload": json.dumps(body)}).encode()


MALFORMED: dict[str, tuple[bytes, str]] = {
    "broken JSON": (b'{"type": "event_callback", "event": ', "application/json"),
    "JSON null": (b"null", "application/json"),
    "JSON list": (b"[1, 2]", "application/json"),
    "JSON string": (b'"U0001"', "application/json"),
    "empty object": (b"{}", "application/json"),
    "payload null": (b"payload=null", FORM),
    "payload broken": (b"payload=%7B%22type%22%3A", FORM),
    "team not an object": (json.dumps({"type": "block_actions", "team": 5, "user": {"id": "U0001"},
                                       "is_enterprise_install": True, "enterprise": 5}).encode(),
                           "application/json"),
    "not UTF-8": (b"token=x&team_id=T0001&channel_id=C0001&user_id=U0001&command=%2Fltx&text="
                  b"\xff\xfe a boat", FORM),
    "metadata a number": (animate_form(7), FORM),
    "metadata not JSON": (animate_form("{not json"), FORM),
    "metadata without a channel": (animate_form('{"t": "1.2"}'), FORM),
    "thread not a string": (animate_form('{"c": "C0001", "t": {"x": 1}}'), FORM),
    "files not a list of ids": (animate_form('{"c": "C0001", "f": "F1"}'), FORM),
    "unknown button kind": (animate_form('{"c": "C0001", "k": "explode", "j": 1}',
                                         "ltx_prompt_modal"), FORM),
    "job id past 64 bits": (animate_form('{"c": "C0001", "k": "extend", "j": 99999999999999999999}',
                                         "ltx_prompt_modal"), FORM),
    "prompt form without a job": (animate_form('{"c": "C0001"}', "ltx_prompt_modal"), FORM),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_a_signed_body_that_is_no_slack_payload_gets_400_and_nothing_is_posted(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore, fake_slack: FakeSlack,
        caplog: pytest.LogCaptureFixture, kind: str) -> None:
    caplog.set_level("INFO")
    raw, content_type = MALFORMED[kind]
    resp = await sender.signed(raw, content_type)
    await adapter.idle()
    assert resp.status_code == 400, resp.text
    nothing_happened(fake_slack, core, caplog)


async def test_the_forms_own_metadata_still_passes(adapter: SlackAdapter, sender: SignedSender,
                                                   core: RecordingCore) -> None:
    resp = await sender.signed(animate_form('{"c": "C0001", "t": "1.2", "f": [], "w": "T0001"}'),
                               FORM)
    assert resp.status_code == 200
    await adapter.idle()
    [inv] = core.invocations
    assert (inv.text, inv.place.thread) == ("a fox runs", "1.2")


# ---------------------------------------------------------------- replays


@pytest.fixture
async def two_adapters(fake_slack: FakeSlack, tmp_path: Path, core: RecordingCore
                       ) -> AsyncIterator[Callable[[], Any]]:
    """Adapters on one store, one after the other: the second is the bot after a restart."""
    made: list[tuple[SlackAdapter, SignedSender]] = []

    async def make() -> tuple[SlackAdapter, SignedSender]:
        if made:
            await made[-1][1].close()
            await made[-1][0].close()
        ad = SlackAdapter(slack_settings_for(fake_slack, tmp_path), core)
        await ad.start()
        assert ad.url is not None
        made.append((ad, SignedSender(ad.url, SIGNING_SECRET)))
        return made[-1]

    yield make
    await made[-1][1].close()
    await made[-1][0].close()


REPLAYED: dict[str, Callable[[], tuple[dict[str, Any], str]]] = {
    "slash command": lambda: (slash_command("a boat --seconds 2"), "command"),
    "re-roll button": lambda: (block_actions("ltx_reroll", "1"), "interactive"),
    "form submission": lambda: (view_submission(
        {"type": "modal", "callback_id": "ltx_animate_modal",
         "private_metadata": '{"c": "C0001"}', "blocks": []}, form_values("a kite")),
        "interactive"),
}


@pytest.mark.parametrize("kind", list(REPLAYED))
async def test_a_replayed_interaction_runs_once_also_after_a_restart(
        two_adapters: Callable[[], Any], core: RecordingCore, fake_slack: FakeSlack,
        caplog: pytest.LogCaptureFixture, kind: str) -> None:
    caplog.set_level("INFO")
    payload, how = REPLAYED[kind]()
    adapter, sender = await two_adapters()
    send = sender.command if how == "command" else sender.interactive
    for _ in range(3):
        assert (await send(payload)).status_code == 200
    await adapter.idle()
    assert len(core.invocations) == 1
    adapter, sender = await two_adapters()  # restarted: the claim is in the store
    send = sender.command if how == "command" else sender.interactive
    assert (await send(payload)).status_code == 200
    await adapter.idle()
    assert len(core.invocations) == 1
    assert not fake_slack.ephemerals and "Traceback" not in caplog.text
    # A new press of the same button is a new interaction (a new trigger_id): it runs.
    fresh, _ = REPLAYED[kind]()
    assert (await send(fresh)).status_code == 200
    await adapter.idle()
    assert len(core.invocations) == 2


async def test_a_replayed_shortcut_opens_no_second_form(adapter: SlackAdapter, sender: SignedSender,
                                                        fake_slack: FakeSlack) -> None:
    image = fake_slack.add_user_file("cat.png", b"\x89PNG\r\n\x1a\n" + b"p" * 64, "image/png")
    payload = message_shortcut({"type": "message", "ts": "1.5", "files": [image]})
    for _ in range(3):
        assert (await sender.interactive(payload)).status_code == 200
    await adapter.idle()
    assert len(fake_slack.named("views.open")) == 1
    assert not fake_slack.ephemerals  # no error id for the replays' spent trigger_id


# ---------------------------------------------------------------- odd text


async def test_names_shown_on_cards_and_forms_lose_controls_and_bidi_overrides(
        adapter: SlackAdapter, sender: SignedSender, core: RecordingCore,
        fake_slack: FakeSlack) -> None:
    fields = slash_command("a boat")
    fields["user_name"] = "\u202eevil\x1b[2J\x00"
    await sender.command(fields)
    image = fake_slack.add_user_file("\u202egnp.exe\x07", b"\x89PNG\r\n\x1a\n" + b"p" * 64,
                                     "image/png")
    await sender.interactive(message_shortcut({"type": "message", "ts": "1.5", "files": [image]}))
    await adapter.idle()
    [inv] = core.invocations
    assert inv.user.name == "evil"
    note = fake_slack.views[-1]["blocks"][0]["elements"][0]["text"]
    assert note == "Animating: gnp.exe"

"""Socket Mode end to end: the adapter opens a real WebSocket to the fake (via
apps.connections.open with the app token), receives envelopes and acknowledges them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack_app import SlackAdapter
from bot.config import Settings
from tests.slack.conftest import RecordingCore
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import app_mention, block_actions, slash_command


@pytest.fixture
async def socket_adapter(slack_settings: Settings, core: RecordingCore
                         ) -> AsyncIterator[SlackAdapter]:
    slack_settings.slack.mode = "socket"
    adapter = SlackAdapter(slack_settings, core)
    await adapter.start()
    yield adapter
    await adapter.close()


def envelope(eid: str, kind: str, payload: dict[str, Any], retry: int = 0) -> dict[str, Any]:
    return {"envelope_id": eid, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", "retry_attempt": retry,
            "retry_reason": "timeout" if retry else ""}


async def acked(fake: FakeSlack, eid: str) -> dict[str, Any]:
    found: dict[str, Any] = await fake.wait_for(
        lambda: next((a for a in fake.socket_acks if a.get("envelope_id") == eid), None))
    return found


async def test_socket_mode_events_commands_and_buttons(socket_adapter: SlackAdapter,
                                                       fake_slack: FakeSlack,
                                                       core: RecordingCore) -> None:
    opened = fake_slack.named("apps.connections.open")
    assert opened and opened[0].headers["Authorization"] == f"Bearer {fake_slack.app_token}"

    mention = app_mention("<@UBOT> a lighthouse", event_id="Ev0SOCK")
    # Each envelope is handled to its end before the next, so the order below is theirs.
    await fake_slack.push_envelope(envelope("e1", "events_api", mention))
    await acked(fake_slack, "e1")
    await socket_adapter.idle()
    # Slack re-sends the same event in a new envelope when it thinks the ack was lost.
    await fake_slack.push_envelope(envelope("e2", "events_api", mention, retry=1))
    await acked(fake_slack, "e2")
    await socket_adapter.idle()
    await fake_slack.push_envelope(envelope("e3", "slash_commands", slash_command("quota")))
    await acked(fake_slack, "e3")
    await socket_adapter.idle()
    await fake_slack.push_envelope(envelope("e4", "interactive", block_actions("ltx_cancel", "5")))
    await acked(fake_slack, "e4")
    await socket_adapter.idle()
    assert [(i.command, i.text, i.options) for i in core.invocations] == [
        ("video", "a lighthouse", {}),
        ("quota", "", {}),
        ("action", "", {"action": "cancel", "job_id": 5}),
    ]


async def test_socket_mode_needs_the_app_token(slack_settings: Settings,
                                               core: RecordingCore) -> None:
    slack_settings.slack.mode = "socket"
    slack_settings.slack.app_token = None
    adapter = SlackAdapter(slack_settings, core)
    with pytest.raises(ValueError, match="SLACK_APP_TOKEN"):
        await adapter.start()
    await adapter.close()

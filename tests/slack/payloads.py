"""Slack request payloads in their documented shapes, and a client that signs and sends them.

Shapes follow api.slack.com: slash commands are form-encoded; Events API
requests are JSON envelopes (`event_callback` with `event_id`); interactivity
is a form with one `payload` field holding JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

TEAM = "T0001"
CHANNEL = "C0001"
USER = "U0001"
BOT_USER = "UBOT"
_ids = itertools.count(1)


def slash_command(text: str, *, command: str = "/ltx", user: str = USER, channel: str = CHANNEL,
                  team: str = TEAM, response_url: str = "") -> dict[str, str]:
    return {
        "token": "deprecated-verification-token", "team_id": team, "team_domain": "fake",
        "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": "alice",
        "command": command, "text": text, "api_app_id": "A0001", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"{next(_ids)}.1.trigger",
    }


def app_mention(text: str, files: list[dict[str, Any]] | None = None, *, user: str = USER,
                channel: str = CHANNEL, team: str = TEAM, ts: str = "1700000001.000100",
                thread_ts: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel,
        "team": team, "event_ts": ts, "client_msg_id": f"msg-{next(_ids)}",
    }
    if files:
        event["files"] = files
        event["upload"] = False
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "deprecated-verification-token", "team_id": team, "api_app_id": "A0001",
        "event": event, "type": "event_callback", "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()), "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


def _user(user: str, team: str) -> dict[str, Any]:
    return {"id": user, "username": "alice", "name": "alice", "team_id": team}


def message_shortcut(message: dict[str, Any], *, callback_id: str = "ltx_animate",
                     user: str = USER, channel: str = CHANNEL, team: str = TEAM,
                     response_url: str = "") -> dict[str, Any]:
    return {
        "type": "message_action", "token": "deprecated", "action_ts": "1700000002.000001",
        "team": {"id": team, "domain": "fake"}, "user": _user(user, team),
        "channel": {"id": channel, "name": "general"}, "is_enterprise_install": False,
        "enterprise": None, "callback_id": callback_id, "trigger_id": f"{next(_ids)}.2.trigger",
        "response_url": response_url, "message_ts": message["ts"], "message": message,
    }


def view_submission(view: dict[str, Any], values: dict[str, Any], *, user: str = USER,
                    team: str = TEAM) -> dict[str, Any]:
    submitted = {**view, "id": "V0001", "team_id": team, "state": {"values": values},
                 "hash": "1700000003.abcdef", "app_id": "A0001", "bot_id": "BBOT"}
    return {
        "type": "view_submission", "team": {"id": team, "domain": "fake"},
        "user": _user(user, team), "api_app_id": "A0001", "token": "deprecated",
        "trigger_id": f"{next(_ids)}.3.trigger", "view": submitted, "response_urls": [],
        "is_enterprise_install": False, "enterprise": None,
    }


def form_values(prompt: str, *, model: str | None = None, seconds: str | None = None,
                aspect: str | None = None, audio: bool = False,
                files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`view.state.values` as Slack builds it from the animate modal's blocks."""

    def select(value: str | None) -> dict[str, Any]:
        return {"type": "static_select",
                "selected_option": None if value is None else
                {"text": {"type": "plain_text", "text": value}, "value": value}}

    values: dict[str, Any] = {
        "prompt": {"prompt": {"type": "plain_text_input", "value": prompt}},
        "model": {"model": select(model)},
        "seconds": {"seconds": select(seconds)},
        "aspect": {"aspect": select(aspect)},
        "audio": {"audio": {"type": "checkboxes", "selected_options":
                            [{"text": {"type": "plain_text", "text": "audio"}, "value": "audio"}]
                            if audio else []}},
    }
    if files is not None:
        values["files"] = {"files": {"type": "file_input", "files": files}}
    return values


def block_actions(action_id: str, value: str, *, message_ts: str = "1700000005.000100",
                  thread_ts: str | None = "1700000001.000100", user: str = USER,
                  channel: str = CHANNEL, team: str = TEAM, response_url: str = "",
                  ephemeral: bool = False) -> dict[str, Any]:
    """A button press. On an `ephemeral` message Slack sends no `message` (the app never
    had it): the container says `is_ephemeral`, and the response_url is the way back."""
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "Job", "bot_id": "BBOT"}
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                 "channel_id": channel, "is_ephemeral": ephemeral}
    if thread_ts:
        message["thread_ts"] = thread_ts
        container["thread_ts"] = thread_ts
    body: dict[str, Any] = {
        "type": "block_actions", "user": _user(user, team), "api_app_id": "A0001",
        "token": "deprecated", "container": container, "trigger_id": f"{next(_ids)}.4.trigger",
        "team": {"id": team, "domain": "fake"}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": "general"}, "message": message,
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "ltx_job", "value": value,
                     "type": "button", "action_ts": "1700000006.000001",
                     "text": {"type": "plain_text", "text": action_id}}],
    }
    if ephemeral:
        del body["message"]
    return body


class SignedSender:
    """Sends requests to the adapter's HTTP endpoint the way Slack does: signed, over HTTP."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self.verifier = SignatureVerifier(secret)
        self.http = httpx.AsyncClient(timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
                   timestamp: int | None = None, signature: str | None = None) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = signature or self.verifier.generate_signature(timestamp=ts, body=body)
        assert sig is not None
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": sig, **(headers or {})}
        return await self.http.post(self.url, content=body.encode(), headers=all_headers)

    def sign(self, raw: bytes, timestamp: str) -> str:
        """The signature Slack puts on `raw` (any bytes, UTF-8 or not)."""
        base = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()

    async def post(self, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        """Exactly these bytes and headers, nothing added (for forged and malformed requests)."""
        return await self.http.post(self.url, content=raw, headers=headers)

    async def signed(self, raw: bytes, content_type: str) -> httpx.Response:
        """`raw` correctly signed, now: what only Slack (or a holder of the secret) can send."""
        ts = str(int(time.time()))
        return await self.post(raw, {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                                     "X-Slack-Signature": self.sign(raw, ts)})

    async def command(self, fields: dict[str, str], **kw: Any) -> httpx.Response:
        return await self.send(urlencode(fields), "application/x-www-form-urlencoded", **kw)

    async def event(self, envelope: dict[str, Any], *, retry_num: int | None = None,
                    **kw: Any) -> httpx.Response:
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.send(json.dumps(envelope), "application/json", headers=headers, **kw)

    async def interactive(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.send(urlencode({"payload": json.dumps(payload)}),
                               "application/x-www-form-urlencoded", **kw)

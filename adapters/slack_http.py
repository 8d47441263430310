"""Slack HTTP mode: what a request must pass before bolt reads anything in it.

Slack signs every request: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256 of
`v0:{timestamp}:{raw body}` with the signing secret, and the timestamp must be
within five minutes. The signature is checked here on the raw bytes, before the
body is decoded or parsed, so a forged request never reaches a listener or the
error handler (which would otherwise answer the user and channel the forged body
names). What fails is refused with 401; a signed body that bolt cannot read
(broken JSON, `null`, not UTF-8, a form whose private_metadata is not ours) with
400. Neither posts anything or logs a traceback.

Replays: a signed request may be sent again within those five minutes. Each
interaction (slash command, shortcut, button, form submission) is claimed once
in the store by its `trigger_id` (unique per invocation) before it is
acknowledged; events are claimed by the core on their `event_id`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack_render import ANIMATE_MODAL, PROMPT_MODAL, ModalMeta

MAX_AGE_SECONDS = 5 * 60
# Unix seconds as ASCII digits only: int() would also take "+1", " 1", "1_0" and other scripts' digits.
TIMESTAMP = re.compile(r"[0-9]{1,12}")


def verified(raw: bytes, headers: Mapping[str, str], secret: bytes, now: float) -> bool:
    """Whether Slack signed exactly these bytes within the last five minutes."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not TIMESTAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    base = b"v0:" + timestamp.encode("ascii") + b":" + raw
    expected = b"v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def bolt_request(raw: bytes, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest | None:
    """The verified body as bolt's request, or None when it is not a payload Slack sends.

    Slack sends UTF-8 whatever the header says; bolt itself fails on many shapes (a JSON
    `null`, a list, a string where it expects an object) while building its context."""
    try:
        text = raw.decode("utf-8")
        request = AsyncBoltRequest(body=text, query=query, headers=dict(headers))
    except (UnicodeDecodeError, ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None
    body = request.body
    if not isinstance(body, dict) or (text and not body) or _bad_form(body):
        return None
    return request


def _bad_form(body: Mapping[str, Any]) -> bool:
    """A submission of one of our forms whose private_metadata we did not write."""
    if body.get("type") != "view_submission":
        return False
    view = body.get("view")
    if not isinstance(view, Mapping):
        return True
    callback = view.get("callback_id")
    if callback not in (ANIMATE_MODAL, PROMPT_MODAL):
        return False
    meta = ModalMeta.load(view.get("private_metadata"))
    if meta is None:
        return True
    return callback == PROMPT_MODAL and (meta.kind is None or meta.job_id is None)


def replay_key(body: Mapping[str, Any], raw_body: str) -> str | None:
    """The id under which an interaction is claimed in the store, or None for what the core
    de-duplicates itself (events, on their `event_id`) or what carries nothing to key on."""
    if body.get("type") in ("event_callback", "url_verification") or "event" in body:
        return None
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        return f"slack:trigger:{trigger}"
    if raw_body:
        # A payload without a trigger_id (none of ours, so far): the same bytes again are a replay.
        return "slack:body:" + hashlib.sha256(raw_body.encode("utf-8")).hexdigest()
    return None


def describe(body: Mapping[str, Any]) -> str:
    """A short, log-safe name for a payload (no user text)."""
    kind = body.get("type") or ("slash command" if "command" in body else "payload")
    return json.dumps(str(kind)[:40])

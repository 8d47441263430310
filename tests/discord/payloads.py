"""Interaction and message payloads in Discord's documented gateway shape.

Each interaction is registered with the fake REST server (so its token works
for callbacks and webhooks) and fed to discord.py through
`client._connection.parse_interaction_create`, the same entry the gateway uses.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import discord

from tests.discord.fake_api import FakeDiscord, snowflake

GUILD_ID = 700000000000000001
CHANNEL_ID = 700000000000000002
OTHER_CHANNEL_ID = 700000000000000003
USER_ID = 600000000000000001
ADMIN_ID = 600000000000000002
STRANGER_ID = 600000000000000003
ROLE_ID = 500000000000000001

OPT_STRING, OPT_INT, OPT_BOOL, OPT_USER, OPT_NUMBER, OPT_ATTACHMENT = 3, 4, 5, 6, 10, 11
SUBCOMMAND = 1


@dataclass
class Payloads:
    fake: FakeDiscord
    guild_id: int | None = GUILD_ID
    channel_id: int = CHANNEL_ID
    filesize_limit: int = 10 * 1024 * 1024
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def _id(self, ts: float | None = None) -> int:
        return snowflake(ts, next(self._counter))

    # ------------------------------------------------------------ pieces

    def user(self, user_id: int = USER_ID, name: str = "alice") -> dict[str, Any]:
        return self.fake.user(user_id, name)

    def member(self, user_id: int = USER_ID, name: str = "alice", roles: tuple[int, ...] = ()) -> dict[str, Any]:
        return {
            "user": self.user(user_id, name),
            "roles": [str(r) for r in roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(discord.Permissions.all().value if user_id == ADMIN_ID else 0),
        }

    def attachment(self, name: str, data: bytes, content_type: str | None) -> dict[str, Any]:
        aid = self._id()
        url = self.fake.add_file(f"{aid}-{name}", data, content_type or "application/octet-stream")
        att: dict[str, Any] = {"id": str(aid), "filename": name, "size": len(data), "url": url,
                               "proxy_url": url}
        if content_type:
            att["content_type"] = content_type
        return att

    def message(
        self,
        *,
        author_id: int = USER_ID,
        author_name: str = "alice",
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        mentions: list[int] | None = None,
        referenced: dict[str, Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        bot: bool = False,
        store: bool = True,
    ) -> dict[str, Any]:
        mid = self._id()
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(self.channel_id),
            "author": self.fake.user(author_id, author_name, bot=bot),
            "content": content,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.fake.user(uid, "LTX" if uid == self.fake.bot_id else f"u{uid}",
                                        bot=uid == self.fake.bot_id) for uid in mentions or []],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": components or [],
            "pinned": False,
            "type": 19 if referenced else 0,
            "flags": 0,
        }
        if self.guild_id:
            msg["guild_id"] = str(self.guild_id)
        if referenced is not None:
            msg["message_reference"] = {"message_id": referenced["id"], "channel_id": referenced["channel_id"],
                                        **({"guild_id": str(self.guild_id)} if self.guild_id else {})}
            msg["referenced_message"] = referenced
        if store:
            self.fake.add_message(self.channel_id, msg)
        return msg

    def guild_create(self, *, premium_tier: int = 0, roles: dict[int, str] | None = None) -> dict[str, Any]:
        """GUILD_CREATE as the gateway streams it at start (the guilds intent): fills the cache."""
        role_list = [{"id": str(self.guild_id), "name": "@everyone", "permissions": "0", "position": 0,
                      "color": 0, "hoist": False, "managed": False, "mentionable": False}]
        for rid, name in (roles or {}).items():
            role_list.append({"id": str(rid), "name": name, "permissions": "0", "position": 1,
                              "color": 0, "hoist": False, "managed": False, "mentionable": False})
        return {
            "id": str(self.guild_id), "name": "Test server", "icon": None, "owner_id": "1",
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "roles": role_list, "emojis": [], "features": [],
            "mfa_level": 0, "system_channel_flags": 0, "premium_tier": premium_tier,
            "preferred_locale": "en-US", "nsfw_level": 0, "premium_progress_bar_enabled": False,
            "member_count": 3, "members": [], "presences": [], "voice_states": [], "threads": [],
            "stage_instances": [], "guild_scheduled_events": [], "stickers": [],
            "channels": [{"id": str(self.channel_id), "type": 0, "name": "videos", "position": 0,
                          "permission_overwrites": [], "nsfw": False, "flags": 0}],
            "large": False, "unavailable": False,
        }

    # ------------------------------------------------------------ interactions

    def interaction(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user_id: int = USER_ID,
        user_name: str = "alice",
        roles: tuple[int, ...] = (),
        message: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> dict[str, Any]:
        iid = self._id(created)
        token = "itok-" + secrets.token_hex(12)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.fake.app_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(self.channel_id),
            "channel": {"id": str(self.channel_id), "type": 0 if self.guild_id else 1,
                        "name": "videos", "position": 0, "nsfw": False,
                        "permission_overwrites": [], "flags": 0,
                        **({"guild_id": str(self.guild_id)} if self.guild_id else
                           {"recipients": [self.user(user_id, user_name)]})},
            "app_permissions": str(discord.Permissions.text().value),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)} if self.guild_id else {"1": str(user_id)},
            "context": 0 if self.guild_id else 1,
            "attachment_size_limit": self.filesize_limit,
        }
        if self.guild_id:
            payload["guild_id"] = str(self.guild_id)
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": str(self.guild_id), "locale": "en-US", "features": []}
            payload["member"] = self.member(user_id, user_name, roles)
        else:
            payload["user"] = self.user(user_id, user_name)
        if message is not None:
            payload["message"] = message
        self.fake.register_interaction(iid, token, self.channel_id, self.guild_id)
        return payload

    def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        attachments: dict[str, dict[str, Any]] | None = None,
        sub: str | None = None,
        users: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """`/name opt:value ...`; attachment options given as {"image": attachment_dict}."""
        opts: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in (options or {}).items():
            if isinstance(value, bool):
                otype = OPT_BOOL
            elif isinstance(value, int):
                otype = OPT_INT
            elif isinstance(value, float):
                otype = OPT_NUMBER
            else:
                otype = OPT_STRING
            opts.append({"name": key, "type": otype, "value": value})
        for key, att in (attachments or {}).items():
            opts.append({"name": key, "type": OPT_ATTACHMENT, "value": att["id"]})
            resolved.setdefault("attachments", {})[att["id"]] = att
        for key, uid in (users or {}).items():
            opts.append({"name": key, "type": OPT_USER, "value": str(uid)})
            resolved.setdefault("users", {})[str(uid)] = self.user(uid, f"user{uid}")
        if sub is not None:
            opts = [{"name": sub, "type": SUBCOMMAND, "options": opts}]
        data: dict[str, Any] = {"id": str(self._id()), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = resolved
        return self.interaction(2, data, **kwargs)

    def context_menu(self, name: str, target: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data = {"id": str(self._id()), "name": name, "type": 3, "target_id": target["id"],
                "resolved": {"messages": {target["id"]: target}}}
        return self.interaction(2, data, **kwargs)

    def button(self, custom_id: str, message: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.interaction(3, {"custom_id": custom_id, "component_type": 2}, message=message, **kwargs)

    def modal_submit(self, modal_callback: dict[str, Any], values: list[str], **kwargs: Any) -> dict[str, Any]:
        """Answer a modal the bot opened: `modal_callback` is the recorded type-9 callback body."""
        data = modal_callback["data"]
        inputs = [c for c in _walk(data["components"]) if c.get("type") == 4]
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": inp["custom_id"], "value": value}]}
                for inp, value in zip(inputs, values, strict=False)]
        return self.interaction(5, {"custom_id": data["custom_id"], "components": rows}, **kwargs)


def _walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for comp in components:
        out.append(comp)
        if "components" in comp:
            out.extend(_walk(comp["components"]))
        if "component" in comp:
            out.extend(_walk([comp["component"]]))
    return out


def minutes_ago(minutes: float) -> float:
    return time.time() - minutes * 60

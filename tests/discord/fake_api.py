"""A fake Discord REST API: a real aiohttp server on 127.0.0.1 that discord.py talks to.

It answers what the adapter uses (login, application info, command sync,
interaction callbacks, webhook edits and followups, channel messages with
multipart files, DM channels), keeps the messages it was sent, records every
call, and can inject failures: 413/40005 for uploads over `upload_limit`,
rate limits (429 with `Retry-After` and a `Via` header so discord.py retries
instead of assuming a Cloudflare ban) and expired interaction tokens
(401/50027). It also serves attachment bytes under `/cdn/` so inputs are
downloaded from loopback, and the channels it knows (`add_channel`) on
GET /channels/{id}.

`/gateway` is a minimal gateway WebSocket (JSON text frames, no compression):
HELLO, READY after IDENTIFY, heartbeat ACKs. Enough for discord.py to log in and
stay connected, so a process under test never looks for Discord's real gateway.
It honours IDENTIFY's `shard` field as Discord does: a connection for shard
[i, n] gets the guilds (`add_gateway_guild`) and guild events (`send_event`)
of the guilds with `(guild_id >> 22) % n == i`, and nothing else.

It mirrors three Discord behaviours the adapter must cope with:
- the first followup after a non-ephemeral "thinking" defer replaces the
  loading message and cannot be ephemeral;
- an interaction token stops working 15 minutes after the interaction;
- a reply (`message_reference`) to a message that is gone is refused with
  400/50035, unless `fail_if_not_exists` is false: then it is posted as a
  plain message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 64
LOADING = 128


def snowflake(ts: float | None = None, counter: int = 0) -> int:
    """A snowflake whose timestamp is `ts` (discord.py derives created_at/expiry from it)."""
    ms = int((time.time() if ts is None else ts) * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (counter & 0x3FFFFF)


@dataclass
class FilePart:
    field: str
    filename: str
    size: int
    content_type: str | None
    data: bytes = b""  # what was sent (a test reads a file the bot made, e.g. my-data)


@dataclass
class Call:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any  # JSON body, or the multipart's payload_json
    files: list[FilePart]
    bot_auth: bool  # an `Authorization: Bot ...` header was sent (the token itself is not kept)
    status: int = 0
    response: Any = None


@dataclass
class Failure:
    method: str
    path_contains: str
    status: int
    count: int
    code: int | None = None
    retry_after: float = 0.01


@dataclass
class FakeInteraction:
    id: int
    token: str
    channel_id: int
    guild_id: int | None
    original_id: int | None = None
    expired: bool = False
    responded: bool = False


@dataclass
class FakeDiscord:
    app_id: int = 900000000000000001
    bot_id: int = 900000000000000002
    bot_name: str = "LTX"
    upload_limit: int = 10 * 1024 * 1024
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    interactions: dict[str, FakeInteraction] = field(default_factory=dict)
    synced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cdn: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    # One entry per IDENTIFY on the gateway: the intents asked for and whether a token came
    # (the token itself is not kept, so it cannot leak into a test report).
    identified: list[dict[str, Any]] = field(default_factory=list)
    # Guilds the gateway streams (GUILD_CREATE after READY) to the shard each belongs to.
    gateway_guilds: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._failures: list[Failure] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        # Identified connections: their shard [id, count] and their next sequence number.
        self._shards: dict[web.WebSocketResponse, tuple[list[int], itertools.count[int]]] = {}
        self.url = ""
        self.root = ""
        self.gateway_url = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/cdn/{name}", self._cdn)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.url = self.root + API_PREFIX
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self.url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ test controls

    def next_id(self) -> int:
        return snowflake(counter=next(self._ids))

    def fail_next(
        self,
        method: str,
        path_contains: str,
        status: int,
        *,
        count: int = 1,
        code: int | None = None,
        retry_after: float = 0.01,
    ) -> None:
        self._failures.append(Failure(method.upper(), path_contains, status, count, code, retry_after))

    def expire(self, token: str) -> None:
        self.interactions[token].expired = True

    def register_interaction(
        self, interaction_id: int, token: str, channel_id: int, guild_id: int | None
    ) -> None:
        self.interactions[token] = FakeInteraction(interaction_id, token, channel_id, guild_id)

    def add_file(self, name: str, data: bytes, content_type: str) -> str:
        self.cdn[name] = (data, content_type)
        return f"{self.root}/cdn/{name}"

    def add_message(self, channel_id: int, data: dict[str, Any]) -> dict[str, Any]:
        self.messages[int(data["id"])] = data
        data["channel_id"] = str(channel_id)
        return data

    def add_channel(self, data: dict[str, Any]) -> dict[str, Any]:
        self.channels[int(data["id"])] = data
        return data

    def add_gateway_guild(self, data: dict[str, Any]) -> None:
        self.gateway_guilds.append(data)

    @staticmethod
    def shard_of(guild_id: int, shard_count: int) -> int:
        """Discord's rule for which shard receives a guild's events."""
        return (guild_id >> 22) % shard_count

    async def send_event(self, event: str, data: dict[str, Any], guild_id: int) -> int:
        """Send a dispatch event to the connections whose shard has `guild_id`; how many got it."""
        sent = 0
        for ws, (shard, seq) in list(self._shards.items()):
            if self.shard_of(guild_id, shard[1]) == shard[0]:
                await ws.send_json({"op": 0, "t": event, "s": next(seq), "d": data})
                sent += 1
        return sent

    def find(self, pred: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if pred(c)]

    def calls_to(self, method: str, path_contains: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and path_contains in c.path]

    async def wait_for(
        self, pred: Callable[[Call], bool], *, limit: float = 15.0, what: str = "a call"
    ) -> Call:
        """Wait (bounded) until a recorded call satisfies `pred`; return the first that does."""
        try:
            async with asyncio.timeout(limit):
                while True:
                    for call in self.calls:
                        if call.status and pred(call):
                            return call
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {c.path} -> {c.status}" for c in self.calls[-30:])
            raise AssertionError(f"timed out waiting for {what}; recent calls:\n{seen}") from None

    async def wait_until(
        self, cond: Callable[[], bool], *, limit: float = 15.0, what: str = "a condition"
    ) -> None:
        try:
            async with asyncio.timeout(limit):
                while not cond():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {c.path} -> {c.status}" for c in self.calls[-30:])
            raise AssertionError(f"timed out waiting for {what}; recent calls:\n{seen}") from None

    def notify(self) -> None:
        """Wake waiters (tests call this when state outside the fake changes)."""
        self._changed.set()

    # ------------------------------------------------------------ shapes

    def user(self, user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }

    def bot_user(self) -> dict[str, Any]:
        return {**self.user(self.bot_id, self.bot_name, bot=True), "verified": True, "mfa_enabled": False,
                "flags": 0, "email": None}

    def new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[FilePart],
        *,
        flags: int = 0,
        webhook: bool = False,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        mid = message_id or self.next_id()
        message: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.user(self.bot_id, self.bot_name, bot=True),
            "content": "",
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
        }
        if webhook:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
        self._apply(message, body, files)
        self.messages[mid] = message
        return message

    def _apply(self, message: dict[str, Any], body: dict[str, Any], files: list[FilePart]) -> None:
        for key in ("content", "embeds", "components"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        if "flags" in body and body["flags"] is not None:
            # Ephemerality cannot change after creation; other flags can.
            message["flags"] = (message["flags"] & EPHEMERAL) | (int(body["flags"]) & ~EPHEMERAL)
        if files or "attachments" in body:
            kept = []
            for att in body.get("attachments") or []:
                old = next((a for a in message["attachments"] if a["id"] == str(att.get("id"))), None)
                if old is not None:
                    kept.append(old)
            for part in files:
                aid = self.next_id()
                url = f"{self.root}/cdn/{aid}-{part.filename}"
                kept.append({
                    "id": str(aid), "filename": part.filename, "size": part.size, "url": url,
                    "proxy_url": url, "content_type": part.content_type,
                })
            message["attachments"] = kept

    # ------------------------------------------------------------ HTTP

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self.cdn:
            return web.Response(status=404)
        data, content_type = self.cdn[name]
        return web.Response(body=data, content_type=content_type)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        seq = itertools.count(1)
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45_000}, "s": None, "t": None})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d") or {}
                if op == 1:  # heartbeat
                    await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:  # identify
                    await self._identify(ws, data, seq)
        finally:
            self._sockets.discard(ws)
            self._shards.pop(ws, None)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any],
                        seq: itertools.count[int]) -> None:
        shard = list(data.get("shard") or [0, 1])
        self.identified.append({"intents": data.get("intents"), "shard": shard,
                                "token_sent": bool(data.get("token"))})
        mine = [g for g in self.gateway_guilds if self.shard_of(int(g["id"]), shard[1]) == shard[0]]
        ready = {"v": 10, "user": self.bot_user(), "session_id": f"fake-session-{shard[0]}",
                 "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
                 "resume_gateway_url": self.gateway_url, "shard": shard,
                 "application": {"id": str(self.app_id), "flags": 0}}
        await ws.send_json({"op": 0, "t": "READY", "s": next(seq), "d": ready})
        for guild in mine:
            await ws.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(seq), "d": guild})
        self._shards[ws] = (shard, seq)
        self.notify()

    async def _read(self, request: web.Request) -> tuple[Any, list[FilePart]]:
        files: list[FilePart] = []
        body: Any = None
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                assert isinstance(part, BodyPartReader)  # discord.py sends flat multipart bodies
                data = await part.read()
                name = part.name or ""
                if name == "payload_json":
                    body = json.loads(data)
                else:
                    files.append(FilePart(name, part.filename or "", len(data),
                                          part.headers.get("Content-Type"), bytes(data)))
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        return body, files

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
        # discord.py only parses bodies whose Content-Type is exactly application/json.
        return web.Response(status=status, body=json.dumps(data).encode(), headers={
            "Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return self._json(status, {"code": code, "message": message})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read(request)
        call = Call(
            method=request.method, path=path, query=dict(request.query), body=body, files=files,
            bot_auth=request.headers.get("Authorization", "").startswith("Bot "),
        )
        self.calls.append(call)
        try:
            response = self._injected(call) or self._route(call)
        except Exception as exc:  # a bug in the fake must fail the test loudly, not hang it
            response = self._error(500, 0, f"fake crashed: {exc!r}")
        call.status = response.status
        body_bytes = response.body
        call.response = json.loads(body_bytes) if isinstance(body_bytes, bytes) and body_bytes else None
        self._changed.set()
        return response

    def _injected(self, call: Call) -> web.Response | None:
        for failure in self._failures:
            if failure.count > 0 and failure.method == call.method and failure.path_contains in call.path:
                failure.count -= 1
                if failure.status == 429:
                    return self._json(
                        429,
                        {"message": "You are being rate limited.", "retry_after": failure.retry_after,
                         "global": False},
                        {"Retry-After": str(failure.retry_after), "Via": "1.1 google",
                         "X-RateLimit-Scope": "user"},
                    )
                return self._error(failure.status, failure.code or 0, "injected failure")
        return None

    def _too_large(self, files: list[FilePart]) -> web.Response | None:
        if any(f.size > self.upload_limit for f in files):
            return self._error(413, 40005, "Request entity too large")
        return None

    def _route(self, call: Call) -> web.Response:
        parts = call.path.strip("/").split("/")
        m = call.method
        body = call.body if isinstance(call.body, dict) else {}
        if parts == ["users", "@me"] and m == "GET":
            return self._json(200, self.bot_user())
        if parts == ["oauth2", "applications", "@me"] and m == "GET":
            return self._json(200, {
                "id": str(self.app_id), "name": "LTX", "description": "", "icon": None,
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "00",
                "owner": self.user(1, "owner"), "flags": 0,
            })
        if parts[0] == "applications" and parts[-1] == "commands" and m == "PUT":
            key = "global" if len(parts) == 3 else f"guild:{parts[3]}"
            out = []
            for cmd in call.body or []:
                out.append({"description": "", **cmd, "id": str(self.next_id()), "application_id": str(self.app_id),
                            "version": "1", **({"guild_id": parts[3]} if len(parts) > 3 else {})})
            self.synced[key] = out
            return self._json(200, out)
        if parts[0] == "interactions" and len(parts) == 4 and m == "POST":
            return self._callback(int(parts[1]), parts[2], body, call.files)
        if parts[0] == "webhooks" and len(parts) >= 3:
            return self._webhook(parts, m, body, call)
        if parts[0] == "channels" and len(parts) == 2 and m == "GET":
            channel = self.channels.get(int(parts[1]))
            if channel is None:
                return self._error(404, 10003, "Unknown Channel")
            return self._json(200, channel)
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            return self._channel(parts, m, body, call)
        if parts == ["users", "@me", "channels"] and m == "POST":
            uid = int(body["recipient_id"])
            return self._json(200, {"id": str(uid + 7), "type": 1, "last_message_id": None,
                                    "recipients": [self.user(uid, f"user{uid}")]})
        return self._error(404, 0, f"fake has no route for {m} {call.path}")

    def _callback(
        self, interaction_id: int, token: str, body: dict[str, Any], files: list[FilePart]
    ) -> web.Response:
        inter = self.interactions.get(token)
        if inter is None or inter.id != interaction_id:
            return self._error(404, 10062, "Unknown interaction")
        if inter.expired:
            return self._error(404, 10062, "Unknown interaction")
        if inter.responded:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        inter.responded = True
        rtype = int(body["type"])
        data = body.get("data") or {}
        flags = int(data.get("flags") or 0)
        info: dict[str, Any] = {"id": str(interaction_id), "type": 2}
        resource: dict[str, Any] = {"type": rtype}
        if rtype in (4, 5):  # a message (type 5: the "thinking" placeholder)
            msg = self.new_message(inter.channel_id, data if rtype == 4 else {}, files,
                                   flags=flags | (LOADING if rtype == 5 else 0), webhook=True)
            inter.original_id = int(msg["id"])
            info.update(response_message_id=msg["id"], response_message_loading=rtype == 5,
                        response_message_ephemeral=bool(flags & EPHEMERAL))
            resource["message"] = msg
        return self._json(200, {"interaction": info, "resource": resource})

    def _webhook(self, parts: list[str], m: str, body: dict[str, Any], call: Call) -> web.Response:
        token = parts[2]
        inter = self.interactions.get(token)
        if inter is None or str(self.app_id) != parts[1]:
            return self._error(404, 10015, "Unknown Webhook")
        if inter.expired:
            return self._error(401, 50027, "Invalid Webhook Token")
        if len(parts) == 3 and m == "POST":  # followup
            if (big := self._too_large(call.files)) is not None:
                return big
            original = self.messages.get(inter.original_id or 0)
            if original is not None and original["flags"] & LOADING:
                # Discord: the first followup after a thinking defer *is* the deferred
                # response; it keeps the defer's visibility whatever flags say.
                original["flags"] &= ~LOADING
                self._apply(original, body, call.files)
                return self._json(200, original)
            flags = int(body.get("flags") or 0) & EPHEMERAL
            created = self.new_message(inter.channel_id, body, call.files, flags=flags, webhook=True)
            return self._json(200, created)
        if len(parts) == 5 and parts[3] == "messages":
            target = inter.original_id if parts[4] == "@original" else int(parts[4])
            msg = self.messages.get(target or 0)
            if msg is None or (target in self.deleted):
                return self._error(404, 10008, "Unknown Message")
            if m == "GET":
                return self._json(200, msg)
            if m == "PATCH":
                if (big := self._too_large(call.files)) is not None:
                    return big
                msg["flags"] &= ~LOADING
                self._apply(msg, body, call.files)
                msg["edited_timestamp"] = datetime.now(UTC).isoformat()
                return self._json(200, msg)
            if m == "DELETE":
                self.deleted.add(int(msg["id"]))
                return web.Response(status=204)
        return self._error(404, 0, f"fake has no webhook route for {m} {call.path}")

    def _channel(self, parts: list[str], m: str, body: dict[str, Any], call: Call) -> web.Response:
        channel_id = int(parts[1])
        if len(parts) == 3 and m == "POST":
            if (big := self._too_large(call.files)) is not None:
                return big
            reference = body.get("message_reference")
            target = self.visible(int(reference["message_id"])) if reference else None
            if reference and (target is None or int(target["channel_id"]) != channel_id):
                if reference.get("fail_if_not_exists", True) is not False:
                    return self._json(400, {"code": 50035, "message": "Invalid Form Body", "errors": {
                        "message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE",
                                                           "message": "Unknown message"}]}}})
                reference = None  # Discord posts it as a plain message
            message = self.new_message(channel_id, body, call.files)
            if reference:
                message.update(type=19, message_reference={
                    "type": 0, "message_id": str(reference["message_id"]),
                    "channel_id": str(channel_id)})
            return self._json(200, message)
        if len(parts) == 4:
            mid = int(parts[3])
            msg = self.messages.get(mid)
            if msg is None or mid in self.deleted or int(msg["channel_id"]) != channel_id:
                return self._error(404, 10008, "Unknown Message")
            if m == "GET":
                return self._json(200, msg)
            if msg["author"]["id"] != str(self.bot_id) and m != "DELETE":
                return self._error(403, 50005, "Cannot edit a message authored by another user")
            if m == "PATCH":
                if (big := self._too_large(call.files)) is not None:
                    return big
                self._apply(msg, body, call.files)
                msg["edited_timestamp"] = datetime.now(UTC).isoformat()
                return self._json(200, msg)
            if m == "DELETE":
                self.deleted.add(mid)
                return web.Response(status=204)
        return self._error(404, 0, f"fake has no channel route for {m} {call.path}")

    # ------------------------------------------------------------ views of state

    def visible(self, message_id: int) -> dict[str, Any] | None:
        if message_id in self.deleted:
            return None
        return self.messages.get(message_id)

    def replied_to(self, message: dict[str, Any]) -> int | None:
        """The id of the message `message` replies to, None when it is a plain message."""
        reference = message.get("message_reference")
        return int(reference["message_id"]) if reference else None

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for mid, m in self.messages.items()
                if int(m["channel_id"]) == channel_id and mid not in self.deleted]

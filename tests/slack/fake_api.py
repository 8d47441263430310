"""A fake Slack Web API: a real aiohttp server on 127.0.0.1 that records every call.

It speaks just enough of Slack to exercise the adapter through the real
`slack_sdk` client: messages, ephemeral notes, modals, the three-step external
upload, file info/delete, private file downloads that demand the bot token
(an HTML login page otherwise, like Slack), response URLs, injected 429s with
Retry-After, and a Socket Mode WebSocket that can push envelopes.

Installs in other workspaces (Slack's OAuth v2): `GET /oauth/v2/authorize` stands
for the admin approving the app in workspace `next_install_team` and redirects to
the redirect URL with a one-time code; `oauth.v2.access` trades the code (with the
app's client id and secret) for that workspace's own bot token, which the API then
accepts, `auth.test` answering with its workspace; `revoke` makes a token invalid.

Token rotation (`rotation = True`, the app's "token rotation" opted in): an install's
token expires `expires_in` seconds after it was issued (by `clock`, which a test moves
instead of sleeping) and the Web API then answers `token_expired`; `oauth.v2.access`
with `grant_type=refresh_token` trades a refresh token, once, for a new token and a new
refresh token (the old refresh token is revoked: a second use is `invalid_refresh_token`),
in the shape Slack documents (access_token, refresh_token, expires_in, token_type bot, ...).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

# Slack's documented limits: message text (past it, msg_too_long) and a modal's title.
TEXT_MAX = 40_000
MODAL_TITLE_MAX = 24
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    deleted: bool = False
    edits: int = 0


@dataclass
class FakeFile:
    id: str
    name: str
    mimetype: str
    data: bytes = b""
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    deleted: bool = False
    completed: bool = False


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    thread_ts: str | None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    ts: str = ""


@dataclass
class Injected:
    status: int
    count: int
    retry_after: int = 0


@dataclass
class FakeSlack:
    bot_token: str = "xoxb-test-bot-token"
    app_token: str = "xapp-test-app-token"
    team_id: str = "T0001"
    bot_user_id: str = "UBOT"
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], FakeMessage] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to response URLs
    views: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[tuple[str, str | None]] = field(default_factory=list)  # (path, auth header)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    outside: set[str] = field(default_factory=set)  # channels the bot is not a member of
    workspace_admins: set[str] = field(default_factory=set)  # users.info says is_admin
    # OAuth: the app's credentials, the workspace the next install approves, where to send
    # the admin back (when the authorize URL names none), and installed token -> workspace.
    client_id: str = "1111.2222"
    client_secret: str = "fake-client-secret"
    next_install_team: str = "T0NEW"
    redirect_uri: str = ""
    installed: dict[str, str] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    # Token rotation: off unless a test opts in; `clock` is the fake's idea of now.
    rotation: bool = False
    expires_in: int = 43_200  # Slack's rotating tokens last 12 hours
    clock: Callable[[], float] = time.time
    refresh_gate: asyncio.Event | None = None  # hold refresh answers until set (races)

    def __post_init__(self) -> None:
        self._injected: dict[str, Injected] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._codes: dict[str, str] = {}  # OAuth code -> workspace
        self._caller: str | None = None  # the bearer token of the call being answered
        self._expires: dict[str, float] = {}  # rotating token -> when it stops working
        self._refresh: dict[str, str] = {}  # live refresh token -> workspace

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._download)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_get("/link", self._socket)
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # ------------------------------------------------------------ test helpers

    def inject(self, method: str, status: int = 429, count: int = 1, retry_after: int = 0) -> None:
        """Answer the next `count` calls of `method` with `status` (429 carries Retry-After)."""
        self._injected[method] = Injected(status, count, retry_after)

    def add_user_file(self, name: str, data: bytes, mimetype: str, *, partial: bool = False,
                      url: str | None = None) -> dict[str, Any]:
        """A file a user uploaded; returns the file object as events carry it.
        `partial` mimics Slack's `file_access: check_file_info` stubs without URLs."""
        fid = f"F{next(self._ids):06d}"
        self.files[fid] = FakeFile(fid, name, mimetype, data, completed=True)
        obj = self._file_object(self.files[fid])
        if url is not None:
            obj["url_private_download"] = url
        if partial:
            return {"id": fid, "mode": "hosted", "file_access": "check_file_info"}
        return obj

    def revoke(self, token: str) -> None:
        self.installed.pop(token, None)

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token handed out stops working (as after an uninstall elsewhere)."""
        self._refresh.clear()

    def expired(self, token: str) -> bool:
        return token in self._expires and self.clock() >= self._expires[token]

    def tokens_of(self, method: str) -> list[str]:
        """The bearer token of each call of `method`, in order."""
        return [c.headers.get("Authorization", "").removeprefix("Bearer ")
                for c in self.named(method)]

    def named(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def live_messages(self, channel: str | None = None) -> list[FakeMessage]:
        return [m for m in self.messages.values()
                if not m.deleted and (channel is None or m.channel == channel)]

    async def wait_for(self, predicate: Callable[[], Any], limit: float = 15.0) -> Any:
        """Wait until `predicate()` is truthy; re-checked after every recorded change."""

        async def check() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    await self._changed.wait()

        return await asyncio.wait_for(check(), limit)

    async def push_envelope(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to the connected client."""
        await asyncio.wait_for(self._socket_ready.wait(), 15)
        await self._sockets[-1].send_str(json.dumps(envelope))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ handlers

    def _file_object(self, f: FakeFile) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": f.id, "name": f.name, "title": f.title or f.name, "mimetype": f.mimetype,
            "filetype": f.name.rsplit(".", 1)[-1], "size": len(f.data), "mode": "hosted",
            "url_private": f"{self.url}/files-pri/{self.team_id}-{f.id}/{f.name}",
            "url_private_download": f"{self.url}/files-pri/{self.team_id}-{f.id}/download/{f.name}",
        }
        if f.channel:
            obj["channels"] = [f.channel]
        return obj

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if body:
            ctype = request.headers.get("Content-Type", "")
            if ctype.startswith("application/json"):
                params.update(json.loads(body))
            else:
                params.update(dict(parse_qsl(body.decode())))
        for key in ("blocks", "files", "view"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, dict(request.headers)))
        try:
            injected = self._injected.get(method)
            if injected and injected.count > 0:
                injected.count -= 1
                return web.json_response(
                    {"ok": False, "error": "ratelimited" if injected.status == 429 else "fatal_error"},
                    status=injected.status, headers={"Retry-After": str(injected.retry_after)})
            if method == "oauth.v2.access":
                return web.json_response(await self._oauth_access(params, request.headers))
            expected = self.app_token if method == "apps.connections.open" else self.bot_token
            auth = request.headers.get("Authorization", "")
            self._caller = auth.removeprefix("Bearer ")
            if self.expired(self._caller):
                return web.json_response({"ok": False, "error": "token_expired"})
            if auth != f"Bearer {expected}" and not (
                    method != "apps.connections.open" and self._caller in self.installed):
                return web.json_response({"ok": False, "error": "invalid_auth"})
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return web.json_response({"ok": False, "error": "unknown_method"})
            result: dict[str, Any] = handler(params)
            return web.json_response({"ok": "error" not in result, **result})
        finally:
            await self._notify()

    def _new_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        team = self.installed.get(self._caller or "", self.team_id)
        return {"url": "https://fake.slack.com/", "team": "Fake", "user": "ltx",
                "team_id": team, "user_id": self.bot_user_id,
                "bot_id": "BBOT" if team == self.team_id else f"B{team}",
                "is_enterprise_install": False}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user", ""))
        if not user:
            return {"error": "user_not_found"}
        return {"user": {"id": user, "team_id": self.team_id, "name": user.lower(),
                         "is_admin": user in self.workspace_admins, "is_owner": False,
                         "is_primary_owner": False, "is_bot": False}}
    async def _authorize(self, request: web.Request) -> web.Response:
        """The admin approves the install in `next_install_team`: back to the app with a code."""
        query = dict(request.query)
        self.authorize_requests.append(query)
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid client_id")
        code = f"code-{next(self._ids)}"
        self._codes[code] = self.next_install_team
        back = query.get("redirect_uri") or self.redirect_uri
        target = back + "?" + urlencode({"code": code, "state": query.get("state", "")})
        raise web.HTTPFound(target)

    async def _oauth_access(self, p: dict[str, Any], headers: Any) -> dict[str, Any]:
        basic = headers.get("Authorization", "").removeprefix("Basic ")
        creds = base64.b64decode(basic).decode() if basic else ""
        given = creds or f"{p.get('client_id')}:{p.get('client_secret')}"
        if given != f"{self.client_id}:{self.client_secret}":
            return {"ok": False, "error": "invalid_client_id"}
        if p.get("grant_type") == "refresh_token":
            if self.refresh_gate is not None:
                await self._notify()  # the call is recorded: a test may now open the gate
                await self.refresh_gate.wait()
            # A refresh token is good once: Slack revokes it when it hands out the next.
            team = self._refresh.pop(str(p.get("refresh_token")), None)
            if team is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            return self._grant(team)
        team = self._codes.pop(str(p.get("code")), None)
        if team is None:
            return {"ok": False, "error": "invalid_code"}
        return {**self._grant(team), "authed_user": {"id": "UADMIN"}}

    def _grant(self, team: str) -> dict[str, Any]:
        n = next(self._ids)
        token = f"xoxe.xoxb-{team}-{n}" if self.rotation else f"xoxb-{team}-{n}"
        self.installed[token] = team
        grant: dict[str, Any] = {
            "ok": True, "app_id": "A0001", "access_token": token, "token_type": "bot",
            "scope": "commands,chat:write,app_mentions:read,files:read,files:write",
            "bot_user_id": self.bot_user_id, "team": {"id": team, "name": f"Team {team}"},
            "enterprise": None, "is_enterprise_install": False}
        if self.rotation:
            refresh = f"xoxe-1-{team}-{n}"
            self._refresh[refresh] = team
            self._expires[token] = self.clock() + self.expires_in
            grant.update(refresh_token=refresh, expires_in=self.expires_in)
        return grant

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + "/link"}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if not channel:
            return {"error": "channel_not_found"}
        if channel in self.outside:
            return {"error": "not_in_channel"}
        ts = self._new_ts()
        msg = FakeMessage(channel, ts, str(p.get("text", "")), list(p.get("blocks") or []),
                          p.get("thread_ts"))
        self.messages[(channel, ts)] = msg
        return {"channel": channel, "ts": ts, "message": {"text": msg.text, "ts": ts}}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.messages.get((str(p.get("channel")), str(p.get("ts"))))
        if msg is None or msg.deleted:
            return {"error": "message_not_found"}
        msg.text = str(p.get("text", ""))
        msg.blocks = list(p.get("blocks") or [])
        msg.edits += 1
        return {"channel": msg.channel, "ts": msg.ts, "text": msg.text}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.messages.get((str(p.get("channel")), str(p.get("ts"))))
        if msg is None or msg.deleted:
            return {"error": "message_not_found"}
        msg.deleted = True
        return {"channel": msg.channel, "ts": msg.ts}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or p.get("channel") in self.outside:
            return {"error": "channel_not_found"}
        if len(str(p.get("text", ""))) > TEXT_MAX:
            return {"error": "msg_too_long"}
        ts = self._new_ts()
        self.ephemerals.append(Ephemeral(str(p.get("channel")), str(p.get("user")),
                                         str(p.get("text", "")), p.get("thread_ts"),
                                         list(p.get("blocks") or []), ts))
        return {"message_ts": ts}

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        # A direct message channel with one user: "D" + their id, as stable as Slack's.
        users = str(p.get("users") or "")
        if not users or "," in users:
            return {"error": "invalid_users" if users else "users_not_found"}
        return {"channel": {"id": f"D{users}", "is_im": True}}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            return {"error": "invalid_trigger_id"}
        view = p.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or len(view["title"]["text"]) > MODAL_TITLE_MAX:
            return {"error": "invalid_arguments"}
        self.views.append(view)
        return {"view": {"id": f"V{next(self._ids):06d}", **view}}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(p.get("file")))
        if f is None or f.deleted:
            return {"error": "file_not_found"}
        return {"file": self._file_object(f)}

    def _m_files_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(p.get("file")))
        if f is None or f.deleted:
            return {"error": "file_not_found"}
        f.deleted = True
        return {}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        fid = f"F{next(self._ids):06d}"
        self.files[fid] = FakeFile(fid, str(p.get("filename")), "application/octet-stream")
        return {"upload_url": f"{self.url}/upload/{fid}", "file_id": fid}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        out = []
        for item in p.get("files") or []:
            f = self.files.get(str(item.get("id")))
            if f is None or not f.data:
                return {"error": "file_not_found"}
            f.title = item.get("title")
            f.channel = p.get("channel_id")
            f.thread_ts = p.get("thread_ts")
            f.initial_comment = p.get("initial_comment")
            f.completed = True
            out.append(self._file_object(f))
        return {"files": out}

    async def _upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["file_id"]
        data = await request.read()
        self.calls.append(Call("upload", {"file_id": fid, "bytes": len(data)},
                               dict(request.headers)))
        f = self.files.get(fid)
        if f is None:
            await self._notify()
            return web.Response(status=404, text="no such upload")
        f.data = data
        f.mimetype = "video/mp4" if f.name.endswith(".mp4") else f.mimetype
        await self._notify()
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.downloads.append((request.path, auth))
        await self._notify()
        fid = request.match_info["team_file"].split("-", 1)[-1]
        f = self.files.get(fid)
        token = (auth or "").removeprefix("Bearer ")
        if (token != self.bot_token and token not in self.installed) or self.expired(token) \
                or f is None:
            # What Slack does without a valid token: 200 and an HTML sign-in page.
            return web.Response(body=LOGIN_PAGE, content_type="text/html")
        return web.Response(body=f.data, content_type=f.mimetype)

    async def _redirect(self, request: web.Request) -> web.Response:
        """A Slack-hosted URL that redirects elsewhere (CDNs do this)."""
        self.downloads.append((request.path_qs, request.headers.get("Authorization")))
        await self._notify()
        raise web.HTTPFound(request.query["to"])

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append({"rid": request.match_info["rid"], **body})
        await self._notify()
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._socket_ready.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
                await self._notify()
        return ws

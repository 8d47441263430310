"""The Slack adapter: slack-bolt AsyncApp listeners, Socket Mode or HTTP, start/stop.

Every listener acknowledges first and then hands the slow part to a task this
adapter tracks (so `close()` can finish or cancel it, and tests can await
`idle()`), never to an untracked `ensure_future`. Slack retries events it
thinks were not acknowledged; a retry carries the same `event_id`, which the
Invocation carries to the core, whose store remembers every event it took
(`Store.first_seen`, also across restarts): the one de-duplication path.

Entry point for `ltx-bot run`: `SlackRunner(app, settings)` (registers the
port with the core app; build it before `app.start()` so resumed jobs find
it), then `await runner.start()` / `await runner.close()`. `start_slack(app,
settings)` does both steps for callers that register late. `ltx-bot` finds it
through `slack_plugin`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_forms import RETAKE_MODAL, read_retake, retake_modal
from adapters.slack_http import bolt_request, describe, replay_key, verified
from adapters.slack_oauth import SlackOAuth
from adapters.slack_port import SlackPort
from adapters.slack_render import (
    ANIMATE_MODAL,
    PROMPT_MODAL,
    PROMPTED_ACTIONS,
    ModalMeta,
    animate_modal,
    parse_action,
    prompt_modal,
    read_form,
)
from adapters.slack_translate import (
    error_code,
    is_complete,
    is_direct_message,
    is_workspace_admin,
    media_command,
    mention_command,
    refusal,
    split_command,
    strip_mentions,
    team_of,
    thread_of,
    to_attachment,
    to_place,
    to_user,
    user_fields,
    who_and_where,
)
from adapters.slack_workspaces import Workspaces, make_clients
from bot.app import App
from bot.boundary import Tell, boundary, report_failure
from bot.commands.services import MAX_JOB_ID
from bot.community.moderation import MODERATOR_ACTIONS
from bot.config import Settings
from bot.errors import UserError
from bot.grammar import clean_text
from bot.ports import Attachment, Core, Invocation, MessageRef, Place, User
from bot.store import SqlStore

log = logging.getLogger(__name__)

SHORTCUT_CALLBACK = "ltx_animate"
EVENTS_PATH = "/slack/events"
NO_MEDIA = ("That message has no image, video or sound I can animate. Use the shortcut on a "
            "message with an image, a clip to extend or a sound file, or run the slash command "
            "with a prompt.")

class SlackAdapter:
    """Slack events -> Invocations for the core, and the port the core answers through.

    Each listener acknowledges, translates (`slack_translate`) and hands the rest to
    a tracked task that runs inside the one error boundary (`bot.boundary`).
    """

    def __init__(self, settings: Settings, core: Core, *,
                 logger: logging.Logger | None = None,
                 min_edit_interval: float | None = None,
                 store: Callable[[], SqlStore] | None = None) -> None:
        """`min_edit_interval` overrides the 3 s floor between edits of one message (tests);
        `store()` is the bot's store, where installs in many workspaces (OAuth) are kept."""
        slack = settings.slack
        many = slack.mode == "http" and slack.oauth
        token = "" if many else slack.bot_token.get_secret_value() if slack.bot_token else ""
        if not token and not many:
            raise ValueError("slack.bot_token (SLACK_BOT_TOKEN) is required for the Slack adapter")
        self.settings = settings
        self.core = core
        self.log = logger or log
        default = make_clients(token or None, slack)
        self.client, self.upload_client = default.client, default.upload_client
        self.oauth: SlackOAuth | None = None
        if many:
            if store is None:
                raise ValueError("the Slack OAuth install needs the bot's store")
            self.oauth = SlackOAuth(slack, store, self.client)
        self.workspaces = Workspaces(slack, default,
                                     self.oauth.installations if self.oauth else None)
        # The core's throttle waits the longer of this floor and jobs.edit_interval_seconds.
        self.port = SlackPort(self.client, slack, upload_client=self.upload_client,
                              edit_interval=min_edit_interval, workspaces=self.workspaces)
        secret = slack.signing_secret.get_secret_value() if slack.signing_secret else ""
        if slack.mode == "http" and not secret:
            raise ValueError("slack.signing_secret (SLACK_SIGNING_SECRET) is required in HTTP mode")
        self._secret = secret.encode("utf-8")
        self.bolt = _bolt_app(self.client, secret, self.log,
                              self.oauth.flow if self.oauth else None)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.url: str | None = None  # HTTP mode: where Slack should send requests
        self.started = 0  # invocations handed to the core (tests, metrics)
        self._register()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        slack = self.settings.slack
        try:
            # Fail fast with a clear message instead of on the first user's command.
            if self.oauth is None:
                await self.client.auth_test()
        except SlackApiError as exc:
            raise ValueError(
                f"Slack refused the bot token (SLACK_BOT_TOKEN): {exc.response.get('error')}"
            ) from None
        if slack.mode == "http":
            web_app = web.Application()
            web_app.router.add_post(EVENTS_PATH, self._http_endpoint)
            web_app.router.add_get("/healthz", self._health)
            if self.oauth is not None:
                self.oauth.add_routes(web_app)
            self._runner = web.AppRunner(web_app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, slack.host, slack.port)
            await site.start()
            host, port = self._runner.addresses[0][:2]
            self.url = f"http://{host}:{port}{EVENTS_PATH}"
            self.log.info("slack: HTTP mode, listening on %s:%s%s", host, port, EVENTS_PATH)
        else:
            app_token = slack.app_token.get_secret_value() if slack.app_token else ""
            if not app_token:
                raise ValueError("slack.app_token (SLACK_APP_TOKEN) is required in Socket Mode")
            self._socket = AsyncSocketModeHandler(self.bolt, app_token, web_client=self.client)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            self.log.info("slack: Socket Mode connected")

    async def close(self, *, drain_seconds: float = 10.0) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.port.close()
        await self.workspaces.close()

    async def idle(self, limit: float = 30.0) -> None:
        """Wait until every background task started by a listener has finished."""

        async def drain() -> None:
            while self._tasks:
                await asyncio.wait(set(self._tasks))

        await asyncio.wait_for(drain(), limit)

    async def _http_endpoint(self, request: web.Request) -> web.Response:
        # The signature first, on the raw bytes: nothing in an unsigned body is read, not
        # even to report an error to the user it names (see slack_http).
        raw = await request.read()
        if not verified(raw, request.headers, self._secret, time.time()):
            self.log.info("slack: refused a request that failed signature verification")
            return web.Response(status=401, text="invalid signature")
        bolt_req = bolt_request(raw, request.query_string, request.headers)
        if bolt_req is None:
            self.log.info("slack: refused a signed request whose body is not a Slack payload")
            return web.Response(status=400, text="malformed payload")
        bolt_resp = await self.bolt.async_dispatch(bolt_req)
        return await to_aiohttp_response(bolt_resp)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # ------------------------------------------------------------ plumbing

    def _spawn(self, work: Coroutine[Any, Any, None], user: User, place: Place, what: str) -> None:
        """Run `work` in a tracked task, inside the boundary that tells `user` in `place`."""
        self._track(self._guarded(work, self._teller(user, place), what))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _teller(self, user: User, place: Place) -> Tell:
        async def tell(text: str) -> None:
            await self.port.tell(user, place, text)

        return tell

    async def _guarded(self, work: Coroutine[Any, Any, None], tell: Tell, what: str) -> None:
        async with boundary(tell, f"slack {what}", logger=self.log):
            await work

    async def _run(self, inv: Invocation) -> None:
        self.started += 1
        if (inv.command in ("admin", "help") or inv.options.get("action") in MODERATOR_ACTIONS
                ) and not inv.user.is_admin:
            # Only these ask: a workspace's admins may change its own settings (help lists
            # them) and use the moderation log's buttons.
            inv.user = replace(inv.user, is_workspace_admin=await self._workspace_admin(
                inv.user.id, inv.place.workspace))
        await self.core.handle(inv, self.port)

    async def _workspace_admin(self, user_id: str, team: str | None) -> bool:
        """users.info (scope users:read), with that workspace's token: an admin or owner of the
        workspace. Any failure (the scope missing from an older install, the app no longer
        installed there) counts as no: the operator's admins stay."""
        try:
            clients = await self.workspaces.for_team(team)
            answer = await clients.client.users_info(user=user_id)
        except UserError:
            return False
        except SlackApiError as exc:
            self.log.warning("slack: users.info failed (%s); is users:read granted?",
                             error_code(exc))
            return False
        info = answer.get("user")
        return isinstance(info, dict) and is_workspace_admin(info)

    async def _attachments(self, files: list[dict[str, Any]], team: str | None) -> list[Attachment]:
        clients = await self.workspaces.for_team(team)  # the workspace's token reads its files
        atts = []
        for f in files:
            if not is_complete(f):
                info = await clients.client.files_info(file=str(f["id"]))
                f = dict(info["file"])
            atts.append(to_attachment(f, clients.credential))
        return atts

    async def _open_view(self, trigger_id: str, view: dict[str, Any], team: str | None) -> None:
        clients = await self.workspaces.for_team(team)
        await clients.client.views_open(trigger_id=trigger_id, view=view)

    # ------------------------------------------------------------ listeners

    def _register(self) -> None:
        slack = self.settings.slack
        # Slack sends the command with its slash; accept "ltx" in the config as well.
        command = slack.command if slack.command.startswith("/") else "/" + slack.command
        self.bolt.command(command)(self._on_command)
        self.bolt.event("app_mention")(self._on_mention)
        # A direct message reads as a mention (event message.im, scope im:history).
        self.bolt.event("message")(self._on_message)
        self.bolt.message_shortcut(SHORTCUT_CALLBACK)(self._on_shortcut)
        self.bolt.view_submission(ANIMATE_MODAL)(self._on_animate_submit)
        self.bolt.view_submission(PROMPT_MODAL)(self._on_prompt_submit)
        self.bolt.view_submission(RETAKE_MODAL)(self._on_retake_submit)
        self.bolt.action(re.compile(r"^ltx_[a-z]+$"))(self._on_button)
        self.bolt.error(self._on_error)
        self.bolt.middleware(self._drop_replays)
        if self.oauth is not None:
            self.oauth.register(self.bolt, self.workspaces)

    async def _drop_replays(self, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        """Claim each interaction in the store before any listener acknowledges it; a signed
        request sent again (within Slack's five minutes, or after a restart) does nothing."""
        key = replay_key(req.body, req.raw_body)
        if key is not None and not await self.core.first_seen(key):
            self.log.info("slack: ignoring a repeated %s", describe(req.body))
            return BoltResponse(status=200, body="")
        return await next()

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        # A listener failed before it could hand off: logged with an id, shown to the sender.
        found = who_and_where(body)
        tell: Tell = _nobody
        if found is not None:
            user = to_user(found[0], None, self.settings.slack)
            tell = self._teller(user, to_place(found[1], team_of(body)))
        self._track(report_failure(error, tell, "slack listener", logger=self.log))

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        slack = self.settings.slack
        team = team_of(body)
        channel = str(body.get("channel_id", ""))
        refused = refusal(slack, team, channel)
        if refused:
            await ack(text=refused, response_type="ephemeral")
            return
        await ack()
        user = to_user(str(body.get("user_id", "")), body.get("user_name"), slack)
        place = to_place(channel, team)
        if body.get("response_url"):
            self.port.remember_response_url(user.id, channel, str(body["response_url"]))
        command, text = split_command(str(body.get("text", "")))
        if command == "modal":
            meta = ModalMeta(channel=channel, team=team)
            view = animate_modal(meta, with_file_input=True)
            self._spawn(self._open_view(str(body.get("trigger_id", "")), view, team), user,
                        place, "views.open")
            return
        inv = Invocation(user=user, place=place, command=command, text=text)
        self._spawn(self._run(inv), user, place, f"command {command}")

    async def _on_mention(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any],
                          context: AsyncBoltContext) -> None:
        await ack()
        # Slack retries an event it thinks was not acknowledged; the core drops the repeat.
        event_id = body.get("event_id")
        slack = self.settings.slack
        team = team_of(body) or event.get("team")
        channel = str(event.get("channel", ""))
        user = to_user(str(event.get("user", "")), None, slack)
        place = to_place(channel, team, thread_of(event))
        refused = refusal(slack, team, channel)
        if refused:
            self._spawn(self.port.tell(user, place, refused), user, place, "refusal")
            return
        text = strip_mentions(str(event.get("text", "")), context.bot_user_id)
        files = [f for f in event.get("files") or [] if isinstance(f, dict) and f.get("id")]
        reply_to = MessageRef("slack", channel, str(event.get("ts", "")))

        async def work() -> None:
            atts = await self._attachments(files, team)
            chosen = mention_command(text, atts)
            await self._run(Invocation(user=user, place=place, command=chosen.command,
                                       text=chosen.text, attachments=atts, reply_to=reply_to,
                                       event_id=event_id))

        self._spawn(work(), user, place, "app_mention")

    async def _on_message(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any],
                          context: AsyncBoltContext) -> None:
        if not is_direct_message(event):
            await ack()
            return
        await self._on_mention(ack, body, event, context)

    async def _on_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        slack = self.settings.slack
        team = team_of(body)
        channel = str((body.get("channel") or {}).get("id", ""))
        user_id, name = user_fields(body)
        user = to_user(user_id, name, slack)
        message = body.get("message") or {}
        place = to_place(channel, team, thread_of(message))
        if body.get("response_url"):
            self.port.remember_response_url(user.id, channel, str(body["response_url"]))
        refused = refusal(slack, team, channel)
        files = [f for f in message.get("files") or [] if isinstance(f, dict) and f.get("id")]
        media = [f for f in files
                 if str(f.get("mimetype", "")).split("/")[0] in ("image", "video", "audio")
                 or not is_complete(f)]
        if refused or not media:
            self._spawn(self.port.tell(user, place, refused or NO_MEDIA), user, place, "shortcut")
            return
        meta = ModalMeta(channel=channel, thread=place.thread, team=team,
                         files=[str(f["id"]) for f in media])
        names = clean_text(", ".join(str(f.get("name") or f["id"]) for f in media))
        view = animate_modal(meta, with_file_input=False, source_note=f"Animating: {names}")
        self._spawn(self._open_view(str(body.get("trigger_id", "")), view, team), user, place,
                    "views.open")

    async def _on_animate_submit(self, ack: AsyncAck, body: dict[str, Any],
                                 view: dict[str, Any]) -> None:
        meta = ModalMeta.load(view.get("private_metadata"))
        form = read_form(view)
        if meta is None:
            await ack(response_action="errors",
                      errors={"prompt": "This form has expired; please start again."})
            return
        if not form.prompt.strip():
            await ack(response_action="errors", errors={"prompt": "Describe what should happen."})
            return
        await ack()
        slack = self.settings.slack
        user_id, name = user_fields(body)
        user = to_user(user_id, name, slack)
        team = meta.team or team_of(body)
        place = to_place(meta.channel, team, meta.thread)
        refused = refusal(slack, team, meta.channel)
        if refused:
            self._spawn(self.port.tell(user, place, refused), user, place, "refusal")
            return
        files: list[dict[str, Any]] = [{"id": fid} for fid in meta.files] + form.files

        async def work() -> None:
            atts = await self._attachments(files, team)
            chosen = media_command(form.text(), atts)
            reply_to = MessageRef("slack", meta.channel, meta.thread) if meta.thread else None
            await self._run(Invocation(user=user, place=place, command=chosen.command,
                                       text=chosen.text, attachments=atts, reply_to=reply_to))

        self._spawn(work(), user, place, "view_submission")

    async def _on_prompt_submit(self, ack: AsyncAck, body: dict[str, Any],
                                view: dict[str, Any]) -> None:
        meta = ModalMeta.load(view.get("private_metadata"))
        form = read_form(view)
        if meta is None or meta.kind is None or meta.job_id is None:
            await ack(response_action="errors",
                      errors={"prompt": "This form has expired; press the button again."})
            return
        await ack()
        user_id, name = user_fields(body)
        user = to_user(user_id, name, self.settings.slack)
        place = to_place(meta.channel, meta.team or team_of(body), meta.thread)
        inv = Invocation(user=user, place=place, command="action", text=form.prompt.strip(),
                         options={"action": meta.kind, "job_id": meta.job_id})
        self._spawn(self._run(inv), user, place, f"action {meta.kind}")

    async def _on_retake_submit(self, ack: AsyncAck, body: dict[str, Any],
                                view: dict[str, Any]) -> None:
        meta = ModalMeta.load(view.get("private_metadata"))
        if meta is None or meta.job_id is None:
            await ack(response_action="errors",
                      errors={"from": "This form has expired; press the button again."})
            return
        read = read_retake(view)
        if isinstance(read, dict):
            await ack(response_action="errors", errors=read)
            return
        await ack()
        prompt, options = read
        user_id, name = user_fields(body)
        user = to_user(user_id, name, self.settings.slack)
        place = to_place(meta.channel, meta.team or team_of(body), meta.thread)
        inv = Invocation(user=user, place=place, command="action", text=prompt,
                         options={"action": "retake", "job_id": meta.job_id, **options})
        self._spawn(self._run(inv), user, place, "action retake")

    async def _on_button(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        slack = self.settings.slack
        actions = body.get("actions") or []
        if not actions:
            return
        action = actions[0]
        parsed = parse_action(str(action.get("action_id", "")), str(action.get("value", "")))
        if parsed is None:
            return
        kind, job_id = parsed
        team = team_of(body)
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        thread = container.get("thread_ts") or message.get("thread_ts") or message.get("ts")
        user_id, name = user_fields(body)
        user = to_user(user_id, name, slack)
        place = to_place(channel, team, thread)
        if body.get("response_url"):
            self.port.remember_response_url(user.id, channel, str(body["response_url"]))
        refused = refusal(slack, team, channel)
        if refused:
            self._spawn(self.port.tell(user, place, refused), user, place, "refusal")
            return
        # A job number no job can have is refused by the core, not asked about in a form.
        if (kind in PROMPTED_ACTIONS or kind == "retake") and job_id <= MAX_JOB_ID:
            meta = ModalMeta(channel=channel, thread=place.thread, team=team, kind=kind,
                             job_id=job_id)
            form = retake_modal(job_id, meta) if kind == "retake" else prompt_modal(kind, job_id, meta)
            self._spawn(self._open_view(str(body.get("trigger_id", "")), form, team),
                        user, place, "views.open")
            return
        inv = Invocation(user=user, place=place, command="action",
                         options={"action": kind, "job_id": job_id})
        work = self._run(inv)
        url = _pressed_private_card(kind, body)
        if url:
            work = self._then(work, lambda: self.port.drop_ephemeral(url))
        self._spawn(work, user, place, f"action {kind}")

    @staticmethod
    async def _then(first: Awaitable[None], second: Callable[[], Awaitable[None]]) -> None:
        try:
            await first
        finally:
            await second()


def _pressed_private_card(kind: str, body: dict[str, Any]) -> str:
    """The response_url that deletes the ephemeral forget-me card a press came from, or ""."""
    if kind == "forget" and (body.get("container") or {}).get("is_ephemeral"):
        return str(body.get("response_url") or "")
    return ""


# ---------------------------------------------------------------- runner for `ltx-bot run`


class _Drop(logging.Filter):
    """Drops one exact message (a library's warning that does not apply here)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def _bolt_app(client: AsyncWebClient, secret: str, logger: logging.Logger,
              oauth_flow: AsyncOAuthFlow | None = None) -> AsyncApp:
    """The bolt app on our web client (its base URL, timeouts and retry handlers).

    Given no token, bolt reads SLACK_BOT_TOKEN from the environment itself and then warns
    that it is unused because a client was given: it is the same token, so that one
    warning is dropped while the app is built (and nothing else, nor at any other time).
    """
    quiet = _Drop(warning_client_prioritized_and_token_skipped())
    logger.addFilter(quiet)
    try:
        # process_before_response: every listener only acks and spawns a tracked task, so
        # answering after it returns costs nothing and means the task exists once Slack
        # has its answer (no fire-and-forget inside bolt that close() could not reach).
        # With an OAuth flow bolt finds each workspace's token in the installations.
        return AsyncApp(client=client, signing_secret=secret, name="ltx-bot", logger=logger,
                        process_before_response=True, oauth_flow=oauth_flow)
    finally:
        logger.removeFilter(quiet)


class SlackRunner:
    """Owns the adapter for `ltx-bot run`: construct (registers the port), start, close."""

    def __init__(self, app: App, settings: Settings, *,
                 min_edit_interval: float | None = None) -> None:
        self.adapter = SlackAdapter(settings, app, min_edit_interval=min_edit_interval,
                                    store=lambda: app.store)
        app.register_port(self.adapter.port)

    @property
    def port(self) -> SlackPort:
        return self.adapter.port

    async def start(self) -> None:
        try:
            await self.adapter.start()
        except BaseException:
            await self.adapter.close()  # the web clients' sessions, whatever the start reached
            raise

    async def close(self) -> None:
        await self.adapter.close()


async def start_slack(app: App, settings: Settings) -> SlackRunner:
    runner = SlackRunner(app, settings)
    await runner.start()
    return runner


async def _nobody(text: str) -> None:
    """A payload without a user or channel: the failure's id is in the log only."""


__all__ = ["SHORTCUT_CALLBACK", "SlackAdapter", "SlackApiError", "SlackRunner", "start_slack"]

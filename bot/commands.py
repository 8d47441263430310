"""The command core: one entry, `Bot.handle(invocation, port)`, for every platform.

It parses, fetches and checks media, prices, and hands work to the JobRunner.
It never raises: a `UserError` becomes a private note with its text; anything
else is logged with a correlation id and the user is told only that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bot import catalog, grammar, media, routing
from bot.config import Settings
from bot.errors import (
    MediaError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    UsageError,
    UserError,
    report_unexpected,
)
from bot.jobs import JobRunner
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia, MediaRef, ParentKind
from bot.ports import Attachment, ChatPort, Invocation, User
from bot.quota import Quota
from bot.store import Store

log = logging.getLogger(__name__)

GENERATE = ("video", "keyframes", "extend", "quote")
ACTIONS = ("cancel", "reroll", "extend", "continue", "delete")


class Bot:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        quota: Quota,
        runner: JobRunner,
        http: httpx.AsyncClient,
        *,
        extra_allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.quota = quota
        self.runner = runner
        self.http = http
        self.extra_allowed_hosts = tuple(extra_allowed_hosts)

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        try:
            await self._dispatch(inv, port)
        except UserError as exc:
            await self._tell(inv, port, str(exc))
        except Exception as exc:  # the boundary: nothing unexpected reaches a platform
            await self._tell(inv, port, report_unexpected(log, exc, f"command {inv.command}"))

    async def _tell(self, inv: Invocation, port: ChatPort, text: str) -> None:
        try:
            await port.tell(inv.user, inv.place, text)
        except Exception as exc:
            report_unexpected(log, exc, "telling the user")

    async def _dispatch(self, inv: Invocation, port: ChatPort) -> None:
        if inv.event_id and not await self.store.first_seen(inv.event_id):
            # A platform re-sent an event we already took (also across a restart).
            log.info("ignoring repeated event %s", inv.event_id)
            return
        await self.store.ensure_user(inv.user)
        name = inv.command.lower().lstrip("/")
        if name in GENERATE:
            await self._generate(inv, port, name)
        elif name == "quota":
            status = await self.quota.status(inv.user, inv.place)
            await self._tell(inv, port, status.text())
        elif name == "jobs":
            await self._tell(inv, port, await self._jobs_text(inv.user))
        elif name == "cancel":
            job = await self.runner.cancel(self._job_id(inv), inv.user)
            await self._tell(inv, port, f"Cancelled job #{job.id}; its {job.estimate_credits} reserved credits were refunded.")
        elif name in ("help", "ltx-help"):
            await self._tell(inv, port, grammar.usage(self._prefix(inv), "markdown") + "\n\n" + _models_text())
        elif name == "admin":
            await self._admin(inv, port)
        elif name == "action":
            await self._action(inv, port)
        else:
            raise UsageError(f"I don't know the command {inv.command!r}. Try help.")

    def _prefix(self, inv: Invocation) -> str:
        """How this user types commands: `/ltx ...` in Slack, `/video`, `/quota` elsewhere."""
        if inv.place.platform == "slack":
            return self.settings.slack.command.strip() + " "
        return "/"

    # ------------------------------------------------------------ generation

    async def _generate(self, inv: Invocation, port: ChatPort, name: str) -> None:
        command = grammar.parse(name, inv.text, inv.options)
        if name == "quote":
            # A quote needs no bytes: price from the platform's hints without downloading.
            refs = [MediaRef(kind=_hint_kind(a), url=a.url) for a in inv.attachments] + command.media
            request = routing.build_request(command, refs, self.settings)
            await self._tell(inv, port, _quote_text(request))
            return
        attachments = list(inv.attachments) + [
            Attachment(url=ref.url, filename=Path(ref.url).name, kind=ref.kind) for ref in command.media
        ]
        with self._scratch() as scratch:
            inputs = await self._fetch(attachments, scratch, allow_local=port.platform == "console")
            refs = [MediaRef(kind=item.info.kind, url=item.source) for item in inputs]
            request = routing.build_request(command, refs, self.settings, seed_source=routing.random_seed)
            prepared = await self._prepare(request, inputs, scratch)
            await self._submit(inv, request, list(prepared))

    async def _submit(
        self, inv: Invocation, request: GenerationRequest, inputs: Sequence[LocalMedia | None],
        *, parent_id: int | None = None, parent_kind: ParentKind | None = None,
    ) -> None:
        while True:
            try:
                await self.runner.start_job(inv, request, inputs, parent_id=parent_id,
                                         parent_kind=parent_kind)
                return
            except QuotaExceeded as exc:
                # A script waits where a person would; money limits are refused as ever.
                if not inv.patient or exc.limit not in ("cooldown", "concurrent"):
                    raise
                log.info("scripted command waits: %s", exc)
                await self._room_for(inv.user, exc)

    async def _room_for(self, user: User, refusal: QuotaExceeded) -> None:
        if refusal.limit == "cooldown":
            # A real timer: the cooldown is measured in wall time by the quota.
            await asyncio.sleep((refusal.retry_after or 0.0) + 0.05)
            return
        running = [j for j in await self.store.list_jobs(user.key, limit=50) if not j.state.final]
        if not running:
            return  # one finished between the refusal and now: try again at once
        waits = [asyncio.create_task(self.runner.wait(j.id)) for j in running]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _fetch(
        self, attachments: Sequence[Attachment], scratch: Path, *, allow_local: bool
    ) -> list[LocalMedia]:
        async def one(index: int, att: Attachment) -> LocalMedia:
            folder = scratch / str(index)
            folder.mkdir()
            return await media.fetch_input(
                att, folder, self.http, self.settings.media,
                extra_allowed_hosts=self.extra_allowed_hosts, allow_local=allow_local,
            )

        # Downloads run together: chat CDNs are slow per file, not per connection.
        return list(await asyncio.gather(*(one(i, a) for i, a in enumerate(attachments))))

    async def _prepare(
        self, request: GenerationRequest, inputs: list[LocalMedia], scratch: Path
    ) -> list[LocalMedia | None]:
        """Fit images to what the endpoint wants (exact size, or multiples of 32 in the user's aspect)."""
        endpoint = request.endpoint
        size = endpoint.image_size
        aspect = _requested_aspect(request)
        out: list[LocalMedia | None] = []
        for item in inputs:
            if item.info.kind != "image":
                out.append(item)
                continue
            path = await asyncio.to_thread(
                media.prepare_image, item.path, scratch,
                size=size, aspect=aspect,
            )
            info = await asyncio.to_thread(media.probe, path, self.settings.media)
            out.append(LocalMedia(path=path, info=info, source=item.source, filename=item.filename))
        first = next((m for m in out if m is not None and m.info.kind == "image"), None)
        if first is not None:
            # `auto` sizes follow the image's shape: price what will really be made.
            request.estimate = catalog.estimate(
                endpoint, request.input, self.settings.quota.credits_per_usd,
                self.settings.prices, input_aspect=first.info.width / first.info.height,
            )
        return out

    def _scratch(self) -> contextlib.AbstractContextManager[Path]:
        # Inputs are uploaded to fal inside submit(); the local copies are never needed again.
        return media.scratch_dir(self.settings.media)

    # ------------------------------------------------------------ buttons

    async def _action(self, inv: Invocation, port: ChatPort) -> None:
        kind = str(inv.options.get("action", ""))
        if kind not in ACTIONS:
            raise UsageError(f"Unknown action {kind!r}.")
        job_id = self._job_id(inv)
        if kind == "cancel":
            await self.runner.cancel(job_id, inv.user)
            return
        if kind == "delete":
            await self.runner.delete_result(job_id, inv.user)
            return
        parent = await self._job(job_id)
        if kind == "reroll":
            await self._reroll(inv, parent)
            return
        if parent.state is not JobState.DONE or not parent.result_url:
            raise UsageError(f"Job #{parent.id} has no finished video to {kind} yet.")
        prompt = inv.text.strip() or parent.prompt
        if kind == "extend":
            command = grammar.parse("extend", prompt)
            ref = MediaRef(kind="video", url=parent.result_url)
            request = routing.build_request(command, [ref], self.settings, seed_source=routing.random_seed)
            await self._submit(inv, request, [None], parent_id=parent.id, parent_kind="extend")
            return
        # continue: the last frame of the result becomes the image of an image-to-video job
        with self._scratch() as scratch:
            try:
                video = await media.download(
                    parent.result_url, scratch / "parent.mp4", self.http, self.settings.media,
                    max_bytes=self.settings.media.max_input_bytes * 4,
                    extra_allowed_hosts=self.extra_allowed_hosts,
                )
            except MediaError:
                where = ("the built-in simulator keeps them only while it runs"
                         if self.settings.uses_simulator else "fal keeps results for about an hour")
                raise MediaError(
                    f"The video of job #{parent.id} can't be fetched any more ({where}). "
                    "Re-roll it, or attach the video to /extend yourself."
                ) from None
            frame = await asyncio.to_thread(media.last_frame, video, scratch)
            info = await asyncio.to_thread(media.probe, frame, self.settings.media)
            item = LocalMedia(path=frame, info=info, source=f"last frame of job #{parent.id}")
            command = grammar.parse("video", prompt)
            request = routing.build_request(
                command, [MediaRef(kind="image", url=item.source)], self.settings,
                seed_source=routing.random_seed,
            )
            prepared = await self._prepare(request, [item], scratch)
            await self._submit(inv, request, prepared, parent_id=parent.id, parent_kind="continue")

    async def _reroll(self, inv: Invocation, parent: JobRecord) -> None:
        endpoint = catalog.by_endpoint_id(parent.endpoint_id)
        data = dict(parent.input)
        data["seed"] = routing.random_seed()
        validated = endpoint.input_model.model_validate(data).model_dump(mode="json", exclude_none=True)
        made = (parent.result or {}).get("video") or {}
        aspect = (made["width"] / made["height"]) if made.get("width") and made.get("height") else None
        estimate = catalog.estimate(
            endpoint, validated, self.settings.quota.credits_per_usd, self.settings.prices,
            input_aspect=aspect,
        )
        request = GenerationRequest(endpoint=endpoint, input=validated, estimate=estimate, prompt=parent.prompt)
        await self._submit(inv, request, [], parent_id=parent.id, parent_kind="reroll")

    # ------------------------------------------------------------ lists and admin

    async def _job(self, job_id: int) -> JobRecord:
        job = await self.store.get_job(job_id)
        if job is None:
            raise NotFound(f"There is no job #{job_id}.")
        return job

    def _job_id(self, inv: Invocation) -> int:
        raw = inv.options.get("job_id")
        if raw is None:
            match = re.search(r"\d+", inv.text or "")
            if not match:
                raise UsageError("Which job? Give its number, e.g. cancel 12 (see jobs for yours).")
            raw = match.group(0)
        try:
            return int(str(raw).lstrip("#"))
        except ValueError:
            raise UsageError(f"{raw!r} is not a job number.") from None

    async def _jobs_text(self, user: User) -> str:
        jobs = await self.store.list_jobs(user.key, limit=10)
        if not jobs:
            return "You have no jobs yet. Try: video a paper boat on a stormy sea"
        now = datetime.now(UTC)
        lines = ["Your recent jobs:"]
        for job in jobs:
            endpoint = _endpoint_title(job.endpoint_id)
            cost = job.settled_credits if job.settled_credits is not None else job.estimate_credits
            cost_text = f"{cost} credits" if job.state is not JobState.CANCELLED else "refunded"
            if job.state is JobState.FAILED:
                cost_text = "refunded"
            age = _ago(now - job.created_at)
            link = f" {job.result_url}" if job.result_url and job.state is JobState.DONE else ""
            prompt = job.prompt if len(job.prompt) <= 50 else job.prompt[:47] + "..."
            lines.append(f"#{job.id} {job.state.value} · {endpoint} · {cost_text} · {age} · {prompt}{link}")
        return "\n".join(lines)

    async def _admin(self, inv: Invocation, port: ChatPort) -> None:
        if not inv.user.is_admin:
            where = {"discord": "[discord] admin_users or admin_roles",
                     "slack": "[slack] admin_users",
                     "console": "[console] admin_users"}.get(inv.user.platform, "the bot's config")
            raise PermissionDenied(
                f"Admin commands are for the bot's admins; the operator lists them in {where}."
            )
        words = (inv.text or "").split()
        sub = str(inv.options.get("sub") or (words[0] if words else "")).lower()
        args = words[1:] if not inv.options.get("sub") else words
        opts = inv.options
        if sub == "grant":
            who = self._user_key(inv, opts.get("user") or _arg(args, 0, "grant <user> <credits>"))
            credits = _int(opts.get("credits") or _arg(args, 1, "grant <user> <credits>"), "credits")
            await self.quota.grant(who, credits, by=inv.user.key)
            await self._tell(inv, port, f"Granted {credits} credits to {who}.")
        elif sub == "tier":
            who = self._user_key(inv, opts.get("user") or _arg(args, 0, "tier <user> <tier|none>"))
            tier = str(opts.get("tier") or _arg(args, 1, "tier <user> <tier|none>"))
            await self.quota.set_tier(who, None if tier.lower() == "none" else tier)
            await self._tell(inv, port, f"{who} is now on tier {tier}.")
        elif sub in ("block", "unblock"):
            who = self._user_key(inv, opts.get("user") or _arg(args, 0, f"{sub} <user>"))
            await self.store.set_blocked(who, sub == "block")
            await self._tell(inv, port, f"{who} is {'blocked' if sub == 'block' else 'unblocked'}.")
        elif sub == "usage":
            scope = str(opts.get("scope") or (args[0] if args else "users")).lower()
            days = _int(opts.get("days") or (args[1] if len(args) > 1 else 30), "days")
            rows = (await self.quota.usage_by_workspace(days) if scope.startswith("work")
                    else await self.quota.usage_by_user(days))
            if not rows:
                await self._tell(inv, port, f"No usage in the last {days} days.")
                return
            lines = [f"Usage over the last {days} days ({'workspaces' if scope.startswith('work') else 'users'}):"]
            for row in rows:
                lines.append(_usage_line(row))
            await self._tell(inv, port, "\n".join(lines))
        else:
            raise UsageError(
                "Admin commands: grant <user> <credits>, tier <user> <tier|none>, block <user>, "
                "unblock <user>, usage [users|workspaces] [days]."
            )

    def _user_key(self, inv: Invocation, raw: Any) -> str:
        """`platform:id`, a mention (<@123>, <@U123|name>) or a bare id on the admin's platform."""
        text = str(raw).strip()
        mention = re.fullmatch(r"<@!?([A-Za-z0-9]+)(\|[^>]*)?>", text)
        if mention:
            return f"{inv.user.platform}:{mention.group(1)}"
        if ":" in text:
            return text
        if not text:
            raise UsageError("Which user? Mention them or give platform:id.")
        return f"{inv.user.platform}:{text}"


# ---------------------------------------------------------------- text helpers




def _hint_kind(att: Attachment) -> Any:
    if att.kind in ("image", "video"):
        return att.kind
    if att.content_type and att.content_type.startswith("video/"):
        return "video"
    return grammar.guess_kind(att.url)


def _requested_aspect(request: GenerationRequest) -> str | None:
    aspect = request.input.get("aspect_ratio")
    if isinstance(aspect, str):
        return None if aspect == "auto" else aspect
    size = request.input.get("video_size")
    named = {v: k for k, v in routing.LTX2_ASPECT_SIZES.items()}
    if isinstance(size, str) and size in named and size != "auto":
        return named[size]
    if isinstance(size, dict):
        w, h = int(size["width"]), int(size["height"])
        return f"{w}:{h}"
    return None


def _quote_text(request: GenerationRequest) -> str:
    est = request.estimate
    seconds = est.frames / float(request.input.get("fps") or request.input.get("frame_rate")
                                 or request.endpoint.fixed_fps or 25)
    return (
        f"{request.endpoint.title}: about {est.credits} credits (${est.usd:.4f}) for "
        f"{est.frames} frames ({seconds:.1f} s) at about {est.width}x{est.height}."
    )


def _models_text() -> str:
    lines = ["**Models**"]
    for e in catalog.ENDPOINTS:
        if e.price.usd_per_megapixel is not None:
            price = f"${e.price.usd_per_megapixel} per megapixel of video"
        else:
            price = f"${e.price.usd_per_video:.2f} a video"
        note = " (deprecated upstream)" if e.deprecated else ""
        lines.append(f"`{e.key}`: {e.title}, takes {e.media.describe()}, {price}{note}")
    return "\n".join(lines)


def _endpoint_title(endpoint_id: str) -> str:
    try:
        return catalog.by_endpoint_id(endpoint_id).key
    except catalog.UnknownModel:
        return endpoint_id


def _ago(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _arg(args: Sequence[str], index: int, usage: str) -> str:
    if index >= len(args):
        raise UsageError(f"Usage: admin {usage}")
    return args[index]


def _int(raw: Any, what: str) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise UsageError(f"{what} must be a whole number, not {raw!r}.") from None


def _usage_line(row: Any) -> str:
    fields = {k: getattr(row, k, None) for k in ("key", "name", "jobs", "credits", "usd")}
    name = fields["name"] or fields["key"]
    usd = fields["usd"] or 0.0
    return f"{name} ({fields['key']}): {fields['jobs']} jobs, {fields['credits']} credits, ${usd:.2f}"

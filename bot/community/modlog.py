"""The moderation log: where a server's moderators see what is made and what was refused.

With `mod_log_channel` set, every job started in that server is mirrored there
(who, where, the prompt, the model, the estimated cost) and so is every prompt the
blocklist refused (who, where, the prompt: moderators need to see what was tried,
users never see the list). An entry is posted through the platform's own port, in
the server's channel; a failure to post (the bot is not in that channel) is logged
and never fails the user's command.

A job's entry is edited when the job ends (how, and the result's link). Each job's
entry (and each report, `reported`) carries the moderators' buttons, Block user and
Delete video (`bot.community.moderation` answers them); `alert` posts a one-line
warning (the budget alert).

Every entry about a user (their job, their refused prompt, a report of their video or
by them) is remembered in the store (`ModlogPosts`), so forget-me can edit it to a
neutral card (`neutralize`); a job's entry is not edited again once it has been.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot import catalog
from bot.community.settings import channel_link
from bot.config.safety import SafetySettings
from bot.errors import report_unexpected
from bot.grammar import shorten
from bot.model import JobRecord
from bot.ports import Action, ActionKind, ChatPort, Invocation, MessageRef, Place, StatusCard
from bot.store.modlog_posts import ModlogPost, ModlogPosts

log = logging.getLogger(__name__)

PROMPT_CHARS = 300  # an entry shows this much of a prompt
# What a forgotten user's entries say instead: nothing of them, no buttons.
FORGOTTEN_CARD = StatusCard(title="Moderation entry removed", final=True,
                            lines=["The user asked the bot to forget them."])
# The moderators' buttons on an entry, in order.
MOD_ACTIONS: tuple[tuple[ActionKind, str], ...] = (("modblock", "Block user"),
                                                   ("moddelete", "Delete video"))


def mod_actions(job_id: int) -> list[Action]:
    return [Action(kind=kind, job_id=job_id, label=label) for kind, label in MOD_ACTIONS]


def _where(safety: SafetySettings, inv: Invocation, svc: Any) -> tuple[ChatPort, Place] | None:
    if not safety.mod_log_channel or inv.place.direct:
        return None
    port: ChatPort | None = svc.runner.port_for(inv.place.platform)
    if port is None:
        return None
    return port, Place(platform=inv.place.platform, channel=safety.mod_log_channel,
                       workspace=inv.place.workspace)


async def _post(svc: Any, safety: SafetySettings, inv: Invocation,
                card_of: Callable[[ChatPort], StatusCard]) -> tuple[ChatPort, MessageRef] | None:
    target = _where(safety, inv, svc)
    if target is None:
        return None
    port, place = target
    try:
        return port, await port.post(place, card_of(port))
    except Exception as exc:
        # The user's command is not the moderation log's to fail.
        report_unexpected(log, exc, "posting to the moderation log")
        return None


def _who_where(inv: Invocation, port: ChatPort) -> str:
    where = channel_link(inv.place.parent or inv.place.channel, port.traits)
    return f"{inv.user.name} ({inv.user.key}) in {where}"


async def refused(svc: Any, safety: SafetySettings, inv: Invocation, texts: list[str]) -> None:
    """A prompt the blocklist refused, for the moderators."""
    said = " / ".join(shorten(t, PROMPT_CHARS) for t in texts if t)

    def card(port: ChatPort) -> StatusCard:
        return StatusCard(title="Blocklist refused a prompt", tone="warning", final=True,
                          lines=[_who_where(inv, port), f"Prompt: {said}"])

    posted = await _post(svc, safety, inv, card)
    await _remember(svc, posted, 0, inv.user.key)


async def started(svc: Any, safety: SafetySettings, inv: Invocation, job: JobRecord) -> None:
    """A job started in this server, for the moderators."""
    try:
        model = catalog.by_endpoint_id(job.endpoint_id).title
    except Exception:  # an endpoint no longer in the catalog still gets its entry
        model = job.endpoint_id

    def card(port: ChatPort) -> StatusCard:
        return StatusCard(
            title=f"Job #{job.id} started", final=True, actions=mod_actions(job.id),
            lines=[_who_where(inv, port), f"Prompt: {shorten(job.prompt, PROMPT_CHARS)}",
                   f"Model: {model} · about {job.estimate_credits} credits (${job.estimate_usd:.2f})"])

    posted = await _post(svc, safety, inv, card)
    await _remember(svc, posted, job.id, job.owner_key)
    if posted is not None:
        # The runner cancels this when it stops: an entry of a job that ends after a
        # restart keeps saying "started" (the job's own card has the end).
        svc.runner.rt.spawn_background(_follow(svc, job.id, *posted, card(posted[0])))


async def _follow(svc: Any, job_id: int, port: ChatPort, ref: MessageRef, entry: StatusCard) -> None:
    """Once the job has ended, its entry says how, with the result's link when there is one."""
    try:
        job: JobRecord = await svc.runner.wait(job_id)
        if not await _posts(svc).listed(ref):
            return  # forget-me made it neutral: the prompt does not come back
        ending = job.state.value  # done, failed or cancelled
        lines = [*entry.lines, f"Result: {job.result_url}"] if job.result_url else entry.lines
        await port.edit(ref, replace(entry, title=f"Job #{job_id} {ending}", lines=lines,
                                     tone="success" if ending == "done" else "warning"))
    except Exception as exc:
        report_unexpected(log, exc, "updating the moderation log")


async def reported(svc: Any, safety: SafetySettings, inv: Invocation, job: JobRecord) -> bool:
    """A finished video someone reported, for the moderators; False when not posted."""

    def card(port: ChatPort) -> StatusCard:
        where = channel_link(job.place.channel, port.traits)
        lines = [f"Reported by {inv.user.name} ({inv.user.key})",
                 f"Made by {job.owner_name} ({job.owner_key}) in {where}",
                 f"Prompt: {shorten(job.prompt, PROMPT_CHARS)}"]
        if job.result_url:
            lines.append(f"Result: {job.result_url}")
        return StatusCard(title=f"Job #{job.id} reported", tone="warning", final=True,
                          lines=lines, actions=mod_actions(job.id))

    posted = await _post(svc, safety, inv, card)
    await _remember(svc, posted, job.id, job.owner_key, inv.user.key)
    return posted is not None


async def alert(svc: Any, safety: SafetySettings, inv: Invocation, text: str) -> bool:
    """A warning for the moderators (the budget alert); False when there is no log here."""
    card = StatusCard(title="Budget alert", tone="warning", final=True, lines=[text])
    return await _post(svc, safety, inv, lambda _port: card) is not None


# ---------------------------------------------------------------- forget-me


def _posts(svc: Any) -> ModlogPosts:
    return ModlogPosts(svc.store, svc.quota.clock)


async def _remember(svc: Any, posted: tuple[ChatPort, MessageRef] | None, job_id: int,
                    *user_keys: str) -> None:
    if posted is None:
        return
    try:
        await _posts(svc).keep(posted[1], job_id, *user_keys)
    except Exception as exc:  # as with posting: the user's command is not the log's to fail
        report_unexpected(log, exc, "remembering a moderation-log post")


async def neutralize(posts: list[ModlogPost], port_for: Callable[[str], ChatPort | None]) -> int:
    """Edit each entry (read before the forget transaction dropped their rows, so a
    job's entry is no longer edited when the job ends) to `FORGOTTEN_CARD`, through the
    port of its platform; returns how many were edited. One that cannot be (deleted, no
    port) is logged at INFO and skipped."""
    edited = 0
    seen: set[tuple[str, str, str]] = set()
    for post in posts:
        ref = post.ref
        port = port_for(ref.platform)
        if port is None or (ref.platform, ref.channel, ref.id) in seen:
            continue
        seen.add((ref.platform, ref.channel, ref.id))
        try:
            await port.edit(ref, FORGOTTEN_CARD)
            edited += 1
        except Exception as exc:  # the message is gone, or the bot may no longer edit there
            log.info("could not edit a moderation-log entry while forgetting: %s",
                     type(exc).__name__)
    return edited

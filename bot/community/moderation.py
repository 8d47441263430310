"""What moderators and members do about a video: the Report button (anyone, once per job),
the moderation log's Block user and Delete video buttons (a server's moderators), the
per-server block they set, and the budget alert.

Moderators are a server's admins (`User.is_workspace_admin`, as each adapter reads it)
and the operator's admins (`User.is_admin`). A block set from the moderation log holds in
that server only: it is stored per scope as `blocked_user:<platform:id>` beside the
server's settings (`workspace_settings`; `ServerSettings` ignores names it does not
know), and `admin unblock-here <user>` lifts it. The operator's `admin block` stays
global. Every moderator action is written to the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from bot.community import modlog
from bot.community.audit import record_admin_action
from bot.community.settings import scope_of
from bot.config.safety import SafetySettings
from bot.errors import PermissionDenied, UsageError
from bot.model import JobRecord, JobState
from bot.ports import ChatPort, Invocation, Place
from bot.store.block_marks import BLOCK_PREFIX
from bot.store.community import Community
from bot.store.moderation import Moderation
from bot.store.protocol import workspace_key_of

log = logging.getLogger(__name__)

# The buttons only moderators may press (an adapter asks its platform who is one for these).
MODERATOR_ACTIONS = frozenset({"modblock", "moddelete"})
# The share of a budget used at which one alert goes out (per budget and period).
ALERT_SHARE = 0.8
NOT_MODERATOR = "Only this {word}'s moderators (its admins) can use the moderation log's buttons."


def is_moderator(inv: Invocation) -> bool:
    return inv.user.is_admin or inv.user.is_workspace_admin


def moderation(svc: Any) -> Moderation:
    return Moderation(svc.store, svc.quota.clock)


def _community(svc: Any) -> Community:
    return Community(svc.store, svc.quota.clock)


def _word(port: ChatPort) -> str:
    return port.traits.workspace_word


# ---------------------------------------------------------------- buttons


async def report(svc: Any, inv: Invocation, port: ChatPort, job_id: int) -> str:
    """Anyone's Report button on a finished video: kept once per user and job, and posted
    to the moderation log where the server has one."""
    from bot.community.safety import server_settings  # safety imports this module

    job = await svc.job(job_id)
    if job.state is not JobState.DONE:
        raise UsageError(f"Job #{job_id} has no finished video to report.")
    rules = await server_settings(svc).safety(job.place)
    to_log = bool(rules.mod_log_channel) and not inv.place.direct
    kept = await moderation(svc).report(job_id, inv.user.key, inv.user.name, scope_of(job.place),
                                        logged=to_log)
    if not kept:
        return f"You have reported job #{job_id} already."
    if to_log and await modlog.reported(svc, rules, inv, job):
        return f"Thank you: job #{job_id} was reported to this {_word(port)}'s moderators."
    return f"Thank you: job #{job_id} was reported; the {_word(port)}'s admins will see it."


async def _moderated_job(svc: Any, inv: Invocation, port: ChatPort, job_id: int) -> JobRecord:
    if not is_moderator(inv):
        raise PermissionDenied(NOT_MODERATOR.format(word=_word(port)))
    job: JobRecord = await svc.job(job_id)
    if not inv.user.is_admin and scope_of(job.place) != scope_of(inv.place):
        raise PermissionDenied(f"Job #{job_id} was not made in this {_word(port)}.")
    return job


async def block_user(svc: Any, inv: Invocation, port: ChatPort, job_id: int) -> str:
    """Block user: the job's owner starts no more jobs in this server."""
    job = await _moderated_job(svc, inv, port, job_id)
    who = job.owner_key
    await _community(svc).set(scope_of(job.place), BLOCK_PREFIX + who, True, inv.user.key)
    await record_admin_action(svc, inv, "block here", target=who, detail=f"job #{job_id}")
    return (f"{job.owner_name} ({who}) is blocked in this {_word(port)}: they can start no jobs "
            f"here. `admin unblock-here {who}` lifts it.")


async def delete_video(svc: Any, inv: Invocation, port: ChatPort, job_id: int) -> str:
    """Delete video: the bot's post of the video goes, as with its owner's Delete button."""
    job = await _moderated_job(svc, inv, port, job_id)
    # The runner lets a job's owner or an admin delete; a moderator of this server was
    # checked above, so they act with the admin's right for this one job.
    await svc.runner.delete_result(job_id, replace(inv.user, is_admin=True))
    await record_admin_action(svc, inv, "delete video", target=job.owner_key, detail=f"job #{job_id}")
    return f"The video of job #{job_id} is deleted."


BUTTONS: dict[str, Callable[[Any, Invocation, ChatPort, int], Awaitable[str]]] = {
    "report": report, "modblock": block_user, "moddelete": delete_video,
}


# ---------------------------------------------------------------- the per-server block


async def refuse_blocked(svc: Any, inv: Invocation, workspace_word: str) -> None:
    """A user a moderator blocked in this server starts nothing here. A block kept
    through forget-me applies again first (the operator's block is then refused by the
    quota's check, as any block)."""
    community = _community(svc)
    scope = scope_of(inv.place)
    stored, marked = await community.settings_and_marks(scope, inv.user.key)
    if marked:
        restored = await community.restore_blocks(inv.user.key)
        log.info("blocks kept through forget-me apply to %s again (%s)", inv.user.key, ", ".join(restored))
        stored = await community.settings(scope)
    if inv.user.is_admin:
        return
    if stored.get(BLOCK_PREFIX + inv.user.key):
        raise PermissionDenied(f"You are blocked from starting jobs in this {workspace_word}.")


async def blocked_here(svc: Any, place: Place) -> list[str]:
    """The users (keys) a moderator blocked in this place's server, in key order."""
    stored = await _community(svc).settings(scope_of(place))
    return sorted(name.removeprefix(BLOCK_PREFIX) for name, on in stored.items()
                  if name.startswith(BLOCK_PREFIX) and on)


async def unblock_here(svc: Any, inv: Invocation, who: str) -> bool:
    """Lift a block set in this server; False when there was none."""
    return await _community(svc).reset(scope_of(inv.place), BLOCK_PREFIX + who)


# ---------------------------------------------------------------- the budget alert


async def budget_check(svc: Any, rules: SafetySettings, inv: Invocation) -> None:
    """After a job started: when 80% of this workspace's monthly budget or of the global
    daily budget is used, one alert per budget and period (in any process)."""
    try:
        for alert, text, operator in await _due_alerts(svc, inv):
            if not await moderation(svc).claim_alert(alert):
                continue
            logged = await modlog.alert(svc, rules, inv, text)
            if operator or not logged:
                await _tell_operator(svc, text)
    except Exception:
        # A job's start is not the alert's to fail.
        log.warning("checking the budgets for an alert failed", exc_info=True)


async def _due_alerts(svc: Any, inv: Invocation) -> list[tuple[str, str, bool]]:
    """(alert key, text, for the operator too) of each budget at or past its share."""
    port = svc.runner.port_for(inv.place.platform)
    word = port.traits.workspace_word if port is not None else "workspace"
    status = await svc.quota.status(inv.user, inv.place, workspace_word=word)
    now = svc.quota.clock()
    due = []
    if status.workspace_limit and status.workspace_used >= ALERT_SHARE * status.workspace_limit:
        key = workspace_key_of(inv.place)
        due.append((f"budget:workspace:{key}:{now:%Y-%m}",
                    f"This {word} ({key}) has used {status.workspace_used} of its "
                    f"{status.workspace_limit} monthly credits "
                    f"({_percent(status.workspace_used, status.workspace_limit)}%).", False))
    if status.global_limit and status.global_used >= ALERT_SHARE * status.global_limit:
        due.append((f"budget:global:{now:%Y-%m-%d}",
                    f"The bot has used {status.global_used} of its {status.global_limit} daily "
                    f"credits for everyone ({_percent(status.global_used, status.global_limit)}%).",
                    True))
    return due


def _percent(used: int, limit: int) -> int:
    return int(100 * used / limit)


async def _tell_operator(svc: Any, text: str) -> None:
    log.error("budget alert: %s", text)
    notice = svc.runner.pauses.notice
    if notice is not None:
        try:
            await notice(f"Budget alert: {text}")
        except Exception:
            log.warning("the admins could not be told about the budget", exc_info=True)

"""`admin pause [reason]` and `admin resume`: stop and restart video generation (see
bot/pause.py for what a pause does and does not do).

A server's admins pause and resume their own server (the scope `platform:workspace`);
the operator's admins pause everywhere ("*"), or one server with `admin pause here
[reason]` / `admin resume here` typed in it. Both are written to the audit trail.
Registered in `bot.commands.admin.SUBCOMMANDS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import pause
from bot.community.audit import record_admin_action
from bot.errors import UsageError
from bot.store import workspace_key_of
from bot.store.pauses import EVERYWHERE

if TYPE_CHECKING:
    from bot.commands.admin import AdminCall

MAX_REASON = 200
USAGE = ("pause [here] [reason]", "resume [here]")
HERE = "here"


def _here(call: AdminCall) -> bool:
    return bool(call.args) and call.args[0].lower() == HERE


def _reason(call: AdminCall) -> str:
    words = call.args[1:] if _here(call) else call.args
    raw = str(call.inv.options.get("reason") or " ".join(words))
    return " ".join(raw.split())[:MAX_REASON]


def _scope(call: AdminCall) -> str:
    """Everywhere for the operator's admins (unless they say `here`), else this server."""
    if call.inv.user.is_admin and not _here(call) and not call.inv.options.get("here"):
        return EVERYWHERE
    key = workspace_key_of(call.inv.place)
    if key is None:
        raise UsageError(f"This conversation belongs to no {call.traits.workspace_word}: pause "
                         f"one from inside it.")
    return key


def _where(call: AdminCall, scope: str) -> str:
    return "everywhere" if scope == EVERYWHERE else f"in this {call.traits.workspace_word}"


def _resume_hint(call: AdminCall, scope: str) -> str:
    return "`admin resume here`" if scope != EVERYWHERE and call.inv.user.is_admin else "`admin resume`"


async def pause_generation(call: AdminCall) -> str:
    scope = _scope(call)
    pause.check_may_pause(call.inv.user, scope)
    pauses = call.svc.runner.pauses
    reason = _reason(call)
    if not await pauses.pause(scope, pause.ADMIN, reason, call.inv.user.name):
        found = [p for p in await pauses.active(call.inv.place)
                 if p.kind == pause.ADMIN and p.scope == scope]
        already = "Video generation is already paused" + (
            "." if scope == EVERYWHERE else f" in this {call.traits.workspace_word}.")
        return f"{already} {pause.describe(found[0], for_admin=True)}" if found else already
    await record_admin_action(call.svc, call.inv, "pause", target=scope, detail=reason)
    here = "" if scope == EVERYWHERE else " here"
    return (f"Video generation is paused {_where(call, scope)}: new commands{here} are refused, "
            f"waiting jobs wait, jobs at fal finish. {_resume_hint(call, scope)} ends it.")


async def resume_generation(call: AdminCall) -> str:
    scope = _scope(call)
    pause.check_may_pause(call.inv.user, scope)
    pauses = call.svc.runner.pauses
    applying = await pauses.active(call.inv.place if scope != EVERYWHERE else None)
    found = [p for p in applying if p.scope == scope]
    await pauses.resume(scope)
    if not found:
        return f"Video generation was not paused {_where(call, scope)}." if scope != EVERYWHERE \
            else "Video generation was not paused."
    await record_admin_action(call.svc, call.inv, "resume", target=scope)
    if scope != EVERYWHERE:
        text = f"Video generation resumes in this {call.traits.workspace_word}."
        if any(p.scope == EVERYWHERE for p in applying):
            text += " (It is still paused everywhere by the bot's operator.)"
        return text
    text = "Video generation resumes; waiting jobs go on."
    if any(p.kind == pause.FAL_ACCOUNT for p in found):
        text += (" (It pauses again by itself if fal still refuses the operator's key or "
                 "account.)")
    return text


SUBCOMMANDS = {"pause": pause_generation, "resume": resume_generation}

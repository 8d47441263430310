"""`admin pause [reason]` and `admin resume`: stop and restart video generation
everywhere (see bot/pause.py for what a pause does and does not do).

Registered in `bot.commands.admin.SUBCOMMANDS`. Scope is everywhere ("*") for now;
the pause API takes a scope, so a per-workspace form can be added here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import pause
from bot.store.pauses import EVERYWHERE

if TYPE_CHECKING:
    from bot.commands.admin import AdminCall

MAX_REASON = 200
USAGE = ("pause [reason]", "resume")


def _reason(call: AdminCall) -> str:
    raw = str(call.inv.options.get("reason") or " ".join(call.args))
    return " ".join(raw.split())[:MAX_REASON]


async def pause_generation(call: AdminCall) -> str:
    scope = EVERYWHERE
    pause.check_may_pause(call.inv.user, scope)
    pauses = call.svc.runner.pauses
    reason = _reason(call)
    if not await pauses.pause(scope, pause.ADMIN, reason, call.inv.user.name):
        [found] = [p for p in await pauses.active() if p.kind == pause.ADMIN]
        return f"Video generation is already paused. {pause.describe(found, for_admin=True)}"
    return ("Video generation is paused everywhere: new commands are refused, waiting jobs "
            "wait, jobs at fal finish. `admin resume` ends it.")


async def resume_generation(call: AdminCall) -> str:
    scope = EVERYWHERE
    pause.check_may_pause(call.inv.user, scope)
    pauses = call.svc.runner.pauses
    found = await pauses.active()
    await pauses.resume(scope)
    if not found:
        return "Video generation was not paused."
    text = "Video generation resumes; waiting jobs go on."
    if any(p.kind == pause.FAL_ACCOUNT for p in found):
        text += (" (It pauses again by itself if fal still refuses the operator's key or "
                 "account.)")
    return text


SUBCOMMANDS = {"pause": pause_generation, "resume": resume_generation}

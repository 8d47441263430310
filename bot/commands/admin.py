"""Admin commands: grant credits, set a tier, block or unblock a user, usage totals.

`admin <sub> <args>` in free text, or `sub` plus named options from a slash
command; each subcommand is a small handler in `SUBCOMMANDS`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.commands import admin_moderation, admin_pause, admin_settings, privacy
from bot.commands.services import Handler, Services, whole_number
from bot.community.audit import record_admin_action
from bot.errors import UsageError
from bot.ports import ChatPort, Invocation, PlatformTraits
from bot.store import UsageRow

# Usage reports look back at most ten years: further back than any ledger goes.
MAX_USAGE_DAYS = 3660
# Each subcommand as typed after `admin`; `help` lists them to admins.
SUBCOMMAND_USAGE = ("grant <user> <credits>", "tier <user> <tier|none>", "block <user>",
                    "unblock <user>", "usage [users|workspaces] [days]", *admin_pause.USAGE,
                    *admin_settings.USAGE, *admin_moderation.USAGE, "forget <user>")
HELP = f"Admin commands: {', '.join(SUBCOMMAND_USAGE)}."


@dataclass(frozen=True)
class AdminCall:
    """One admin subcommand: its words after the subcommand's name and the slash options."""

    svc: Services
    inv: Invocation
    traits: PlatformTraits
    args: list[str]

    def value(self, option: str, index: int, usage: str) -> str:
        """The option, else the word at `index`; when neither is there, the usage."""
        raw = self.inv.options.get(option)
        if raw:
            return str(raw)
        if index >= len(self.args):
            raise UsageError(f"Usage: admin {usage}")
        return self.args[index]

    def optional(self, option: str, index: int, default: Any) -> str:
        raw = self.inv.options.get(option) or (self.args[index] if index < len(self.args) else default)
        return str(raw)

    def user_key(self, usage: str) -> str:
        """`platform:id`, a mention, or a bare id on the admin's own platform."""
        text = self.value("user", 0, usage).strip()
        mention = re.fullmatch(self.traits.mention_pattern, text)
        if mention:
            return f"{self.inv.user.platform}:{mention.group('id')}"
        if ":" in text:
            return text
        if not text:
            raise UsageError("Which user? Mention them or give platform:id.")
        return f"{self.inv.user.platform}:{text}"


async def admin(svc: Services, inv: Invocation, port: ChatPort) -> str:
    words = (inv.text or "").split()
    named = inv.options.get("sub")
    sub = str(named or (words[0] if words else "")).lower()
    if not admin_settings.allowed(inv.user, sub):
        raise admin_settings.refusal(inv.user, sub, port.traits.admin_setting, port.traits.workspace_word)
    run = SUBCOMMANDS.get(sub)
    if run is None:
        raise UsageError(HELP)
    args = words if named else words[1:]
    note = await run(AdminCall(svc, inv, port.traits, args))
    if sub == "forget":
        # Whom the bot forgot stays forgotten: the trail says only that an admin did it.
        await record_admin_action(svc, inv, sub, target="a user (forgotten)")
    elif sub in admin_settings.AUDITED:
        target = str(inv.options.get("user") or (args[0] if args else ""))
        await record_admin_action(svc, inv, sub, target=target, detail=note)
    return note


HANDLERS: dict[str, Handler] = {"admin": admin}


async def _grant(call: AdminCall) -> str:
    usage = "grant <user> <credits>"
    who = call.user_key(usage)
    limit = call.svc.settings.quota.max_grant_credits
    credits = whole_number(call.value("credits", 1, usage), "credits", -limit, limit,
                           " at a time ([quota] max_grant_credits)")
    await call.svc.quota.grant(who, credits, by=call.inv.user.key)
    return f"Granted {credits} credits to {who}."


async def _tier(call: AdminCall) -> str:
    usage = "tier <user> <tier|none>"
    who = call.user_key(usage)
    tier = call.value("tier", 1, usage)
    await call.svc.quota.set_tier(who, None if tier.lower() == "none" else tier)
    return f"{who} is now on tier {tier}."


async def _block(call: AdminCall) -> str:
    who = call.user_key("block <user>")
    await call.svc.store.set_blocked(who, True)
    return f"{who} is blocked."


async def _unblock(call: AdminCall) -> str:
    who = call.user_key("unblock <user>")
    await call.svc.store.set_blocked(who, False)
    return f"{who} is unblocked."


async def _usage(call: AdminCall) -> str:
    by_workspace = call.optional("scope", 0, "users").lower().startswith("work")
    days = whole_number(call.optional("days", 1, 30), "days", 1, MAX_USAGE_DAYS)
    quota = call.svc.quota
    rows = await (quota.usage_by_workspace(days) if by_workspace else quota.usage_by_user(days))
    if not rows:
        return f"No usage in the last {days} days."
    scope = f"{call.traits.workspace_word}s" if by_workspace else "users"
    return "\n".join([f"Usage over the last {days} days ({scope}):", *map(_usage_line, rows),
                      rounding_note(call.svc.settings.quota.credits_per_usd)])


def rounding_note(credits_per_usd: float) -> str:
    """How the two columns agree: credits are each job's USD price at this rate, rounded up."""
    return (f"Credits = USD x {credits_per_usd:g}, rounded up to a whole credit per job, so "
            "credits can exceed USD by under one credit a job.")


SUBCOMMANDS: dict[str, Callable[[AdminCall], Awaitable[str]]] = {
    "grant": _grant, "tier": _tier, "block": _block, "unblock": _unblock, "usage": _usage,
    **admin_pause.SUBCOMMANDS,
    **admin_settings.SUBCOMMANDS,
    "forget": privacy.admin_forget,
    **admin_moderation.SUBCOMMANDS,
}


def _usage_line(row: UsageRow) -> str:
    return f"{row.name or row.key} ({row.key}): {row.jobs} jobs, {row.credits} credits, ${round(row.usd or 0.0, 2) + 0.0:.2f}"

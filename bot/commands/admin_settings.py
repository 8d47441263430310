"""`admin settings show|set|reset` and `admin audit [days]`: a server's own admins
change their server's settings and read what admins did.

A server's admins (`User.is_workspace_admin`, as each adapter reads it from its
platform) may run these in their server; the operator's admins anywhere. The
operator-only subcommands (grant, tier, usage...) stay theirs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.commands import admin_moderation
from bot.commands.services import whole_number
from bot.community import audit, moderation
from bot.community.settings import (
    SETTINGS,
    ServerSettings,
    parse,
    scope_of,
    setting,
    shown,
)
from bot.errors import PermissionDenied, UsageError
from bot.ports import User

if TYPE_CHECKING:
    from bot.commands.admin import AdminCall

MAX_AUDIT_DAYS = 3660
USAGE = ("settings show", "settings set <name> <value>", "settings reset <name>", "audit [days]")
# What a server's own admins may run; everything else is the operator's admins'.
WORKSPACE_SUBCOMMANDS = frozenset({"settings", "audit"}) | admin_moderation.WORKSPACE_SUBCOMMANDS
# Admin subcommands whose every use is written to the audit trail by the dispatcher.
AUDITED = frozenset({"grant", "tier", "block", "unblock", "forget"})
_SET = re.compile(r"^\s*(?:admin\s+)?settings\s+set\s+(?P<name>\S+)\s*(?P<value>.*)$", re.I | re.S)


def allowed(user: User, sub: str) -> bool:
    return user.is_admin or (user.is_workspace_admin and sub in WORKSPACE_SUBCOMMANDS)


def refusal(user: User, sub: str, admin_setting: str, workspace_word: str) -> PermissionDenied:
    if user.is_workspace_admin:
        return PermissionDenied(
            f"As an admin of this {workspace_word} you may use admin "
            f"{' and admin '.join(sorted(WORKSPACE_SUBCOMMANDS))}; admin {sub} is for the bot's "
            f"operator admins, listed in {admin_setting}.")
    return PermissionDenied(
        f"Admin commands are for the bot's admins; the operator lists them in {admin_setting}. "
        f"Admins of this {workspace_word} may use admin {' and admin '.join(sorted(WORKSPACE_SUBCOMMANDS))}.")


async def settings_command(call: AdminCall) -> str:
    verb = call.optional("action", 0, "show").lower()
    if verb == "show":
        return await _show(call)
    if verb == "set":
        return await _set(call)
    if verb == "reset":
        return await _reset(call)
    raise UsageError("Usage: " + "; ".join(f"admin {u}" for u in USAGE[:3]))


def _server(call: AdminCall) -> ServerSettings:
    return ServerSettings(call.svc.settings, audit.community(call.svc))


async def _show(call: AdminCall) -> str:
    place, traits = call.inv.place, call.traits
    changed = await _server(call).changed(place)
    lines = [f"Settings of this {traits.workspace_word} (* = changed here; the rest are the bot's defaults):"]
    for name, spec in SETTINGS.items():
        section = await _server(call).section(place, spec.section)
        value = getattr(section, name)
        mark = "*" if name in changed else " "
        lines.append(f"{mark} {name} = {shown(spec, value, traits)}  ({spec.what})")
    return "\n".join([*lines, *await _blocked_lines(call)])


async def _blocked_lines(call: AdminCall) -> list[str]:
    """Who the moderation log's Block user button blocked here, and how to lift it (the
    block is kept beside the settings, so it is shown with them)."""
    word = call.traits.workspace_word
    keys = await moderation.blocked_here(call.svc, call.inv.place)
    if not keys:
        return [f"Blocked in this {word} (the moderation log's Block user): no one."]
    names = []
    for key in keys:
        user = await call.svc.store.get_user(key)
        names.append(f"{user.name} ({key})" if user is not None and user.name else key)
    return [f"Blocked in this {word} (the moderation log's Block user): {', '.join(names)}.",
            f"To lift a block: admin unblock-here and the user, e.g. admin unblock-here {keys[0]}."]


def _name_and_value(call: AdminCall) -> tuple[str, str]:
    options = call.inv.options
    if options.get("name"):
        if not str(options.get("value") or "").strip():
            raise UsageError("Give the new value (none for an empty list).")
        return str(options["name"]), str(options["value"])
    match = _SET.match(call.inv.text or "")
    if match is None or not match.group("value").strip():
        raise UsageError("Usage: admin settings set <name> <value> (lists comma-separated, "
                         "none for an empty list).")
    return match.group("name"), match.group("value").strip()


async def _set(call: AdminCall) -> str:
    name, text = _name_and_value(call)
    spec = setting(name)
    value = parse(spec, text, call.inv.place)
    await audit.community(call.svc).set(scope_of(call.inv.place), spec.name, value, call.inv.user.key)
    words = shown(spec, value, call.traits)
    await audit.record_admin_action(call.svc, call.inv, "settings set", target=spec.name,
                                    detail=_private(spec.name, words))
    return f"{spec.name} is now {words} in this {call.traits.workspace_word}."


async def _reset(call: AdminCall) -> str:
    name = str(call.inv.options.get("name") or call.optional("name", 1, ""))
    if not name:
        raise UsageError("Usage: admin settings reset <name>")
    spec = setting(name)
    await audit.community(call.svc).reset(scope_of(call.inv.place), spec.name)
    await audit.record_admin_action(call.svc, call.inv, "settings reset", target=spec.name)
    section = await _server(call).section(call.inv.place, spec.section)
    return (f"{spec.name} is back to the bot's default in this {call.traits.workspace_word}: "
            f"{shown(spec, getattr(section, spec.name), call.traits)}.")


def _private(name: str, words: str) -> str:
    # The audit is read by every admin of the server; the blocklist itself is not repeated
    # there (its point is not to advertise the words), only how long it is.
    if name.startswith("blocklist"):
        return f"{0 if words == 'none' else len(words.split(', '))} entries"
    return words


async def audit_command(call: AdminCall) -> str:
    days = whole_number(call.optional("days", 0, 7), "days", 1, MAX_AUDIT_DAYS)
    everywhere = call.inv.user.is_admin
    scope = None if everywhere else scope_of(call.inv.place)
    since = call.svc.quota.clock() - timedelta(days=days)
    entries = await audit.recent(call.svc, scope, since)
    where = "" if everywhere else f" in this {call.traits.workspace_word}"
    if not entries:
        return f"No admin actions{where} in the last {days} days."
    lines = [f"Admin actions{where} in the last {days} days, newest first:"]
    lines += [audit.audit_line(e, with_scope=everywhere) for e in entries]
    return "\n".join(lines)


SUBCOMMANDS = {"settings": settings_command, "audit": audit_command}

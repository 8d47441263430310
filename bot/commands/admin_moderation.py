"""`admin reports [days]` (the reports of finished videos, kept whether or not a
moderation log took them) and `admin unblock-here <user>` (lift a block a moderator set
from the moderation log). A server's admins see and act on their server; the operator's
admins see every server's reports. Registered in `bot.commands.admin.SUBCOMMANDS`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bot.commands.services import whole_number
from bot.community import moderation
from bot.community.audit import record_admin_action
from bot.community.settings import scope_of
from bot.store.moderation import Report

if TYPE_CHECKING:
    from bot.commands.admin import AdminCall

MAX_REPORT_DAYS = 3660
USAGE = ("reports [days]", "unblock-here <user>")
# What `help` lists to a server's own admins beside the settings (their pause is their server's).
WORKSPACE_USAGE = ("pause [reason]", "resume", *USAGE)
# What a server's own admins may run here (the dispatcher's table of theirs adds these).
WORKSPACE_SUBCOMMANDS = frozenset({"reports", "unblock-here", "pause", "resume"})


def _line(report: Report, *, with_scope: bool) -> str:
    when = report.at.strftime("%Y-%m-%d %H:%M")
    where = f" in {report.scope}" if with_scope else ""
    logged = "" if report.logged else " (no moderation log)"
    return f"{when} job #{report.job_id}{where}: reported by {report.user_name} ({report.user_key}){logged}"


async def reports(call: AdminCall) -> str:
    days = whole_number(call.optional("days", 0, 7), "days", 1, MAX_REPORT_DAYS)
    everywhere = call.inv.user.is_admin
    since = call.svc.quota.clock() - timedelta(days=days)
    found = await moderation.moderation(call.svc).reports(
        None if everywhere else scope_of(call.inv.place), since)
    if not found:
        return f"No reports in the last {days} days."
    return "\n".join([f"Reports in the last {days} days:",
                      *(_line(r, with_scope=everywhere) for r in found)])


async def unblock_here(call: AdminCall) -> str:
    who = call.user_key("unblock-here <user>")
    word = call.traits.workspace_word
    if not await moderation.unblock_here(call.svc, call.inv, who):
        return f"{who} was not blocked in this {word}."
    await record_admin_action(call.svc, call.inv, "unblock here", target=who)
    return f"{who} is unblocked in this {word}."


SUBCOMMANDS = {"reports": reports, "unblock-here": unblock_here}

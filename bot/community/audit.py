"""The audit trail of admin actions: `record_admin_action` writes one, for every admin
command that changes something (grant, tier, block, settings, and those added later:
forget, pause), and `admin audit [days]` reads them back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.community.settings import scope_of
from bot.ports import Invocation
from bot.store.community import AdminAction, Community


def community(svc: Any) -> Community:
    """The settings/audit tables over `svc` (a `bot.commands.services.Services`)."""
    return Community(svc.store, svc.quota.clock)


async def record_admin_action(svc: Any, inv: Invocation, action: str, *, target: str = "",
                              detail: str = "") -> None:
    """Write one admin action: who (`inv.user`), where (`inv.place`'s workspace), what
    (`action`, e.g. "grant"), on whom or what (`target`) and how (`detail`, in words)."""
    await community(svc).record(inv.user.key, scope_of(inv.place), action, target, detail)


def audit_line(entry: AdminAction, *, with_scope: bool) -> str:
    when = entry.at.strftime("%Y-%m-%d %H:%M")
    where = f" in {entry.scope}" if with_scope else ""
    target = f" {entry.target}" if entry.target else ""
    detail = f": {entry.detail}" if entry.detail else ""
    return f"{when} {entry.actor}{where}: {entry.action}{target}{detail}"


async def recent(svc: Any, scope: str | None, since: datetime) -> list[AdminAction]:
    return await community(svc).actions(scope, since)

"""A server's own settings, the admin audit trail and the safety counters, on either backend.

Three tables (migration v6): `workspace_settings` (one row per server and setting
it changed: the rest are the operator's defaults), `admin_audit` (every admin
action: who, where, what, on whom), and `safety_events` (a refused prompt: who,
where, which rule; never the prompt itself). Each function is one step of a
transaction on `SqlTx`; `Community` runs them on a `Store`.

A scope is `platform:workspace` (`chat:123`), or `platform:-` where there is no
workspace (direct messages on a platform whose DMs belong to none, a terminal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .block_marks import marked_scopes, restore_blocks
from .codec import encode_time, required_time
from .queries import SqlTx
from .tables import StoreTables

AUDIT_LIST_LIMIT = 200


@dataclass(frozen=True)
class AdminAction:
    """One admin action as the audit keeps it."""

    at: datetime
    actor: str  # platform:id of the admin
    scope: str  # where it was done (see the module docstring)
    action: str  # "grant", "settings set", "block", ...
    target: str = ""  # the user or setting acted on
    detail: str = ""  # the values, in words


def _settings(tx: SqlTx, scope: str) -> dict[str, Any]:
    rows = tx.fetch("SELECT name, value_json FROM workspace_settings WHERE scope = ?", (scope,))
    return {r["name"]: json.loads(r["value_json"]) for r in rows}


def _set(tx: SqlTx, scope: str, name: str, value: Any, by: str, now: datetime) -> None:
    tx.execute(
        """INSERT INTO workspace_settings (scope, name, value_json, updated_by, updated_at)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (scope, name) DO UPDATE SET value_json = excluded.value_json,
             updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
        (scope, name, json.dumps(value), by, encode_time(now)))


def _reset(tx: SqlTx, scope: str, name: str) -> bool:
    cur = tx.execute("DELETE FROM workspace_settings WHERE scope = ? AND name = ?", (scope, name))
    return cur.rowcount > 0


def _record(tx: SqlTx, action: AdminAction) -> None:
    tx.execute(
        """INSERT INTO admin_audit (at, actor, scope, action, target, detail)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (encode_time(action.at), action.actor, action.scope, action.action, action.target,
         action.detail))


def _actions(tx: SqlTx, scope: str | None, since: datetime) -> list[AdminAction]:
    where = "at >= ?" + ("" if scope is None else " AND scope = ?")
    params: tuple[Any, ...] = (encode_time(since),) + (() if scope is None else (scope,))
    rows = tx.fetch(f"SELECT * FROM admin_audit WHERE {where} ORDER BY at DESC, id DESC "
                    f"LIMIT {AUDIT_LIST_LIMIT}", params)
    return [AdminAction(at=required_time(r["at"]), actor=r["actor"], scope=r["scope"],
                        action=r["action"], target=r["target"], detail=r["detail"]) for r in rows]


def _count_event(tx: SqlTx, scope: str, user_key: str, kind: str, channel: str,
                 now: datetime) -> None:
    tx.execute("INSERT INTO safety_events (at, scope, user_key, kind, channel) VALUES (?, ?, ?, ?, ?)",
               (encode_time(now), scope, user_key, kind, channel))


def _events(tx: SqlTx, scope: str, kind: str, since: datetime) -> int:
    row = tx.fetch("SELECT COUNT(*) AS n FROM safety_events WHERE scope = ? AND kind = ? AND at >= ?",
                   (scope, kind, encode_time(since)))
    return int(row[0]["n"])


class Community(StoreTables):
    """The settings, audit and counter tables of one `Store`."""

    async def settings(self, scope: str) -> dict[str, Any]:
        """The settings this scope changed (name -> value); the rest are the defaults."""
        return await self._run(lambda tx: _settings(tx, scope), write=False)

    async def set(self, scope: str, name: str, value: Any, by: str) -> None:
        now = self.clock()
        await self._run(lambda tx: _set(tx, scope, name, value, by, now))

    async def reset(self, scope: str, name: str) -> bool:
        """Back to the default; False when the scope had not changed it."""
        return await self._run(lambda tx: _reset(tx, scope, name))

    async def record(self, actor: str, scope: str, action: str, target: str = "",
                     detail: str = "") -> None:
        entry = AdminAction(self.clock(), actor, scope, action, target, detail)
        await self._run(lambda tx: _record(tx, entry))

    async def actions(self, scope: str | None, since: datetime) -> list[AdminAction]:
        """Newest first, at most AUDIT_LIST_LIMIT; every scope's when `scope` is None."""
        return await self._run(lambda tx: _actions(tx, scope, since), write=False)

    async def count_event(self, scope: str, user_key: str, kind: str, channel: str) -> None:
        now = self.clock()
        await self._run(lambda tx: _count_event(tx, scope, user_key, kind, channel, now))

    async def events(self, scope: str, kind: str, since: datetime) -> int:
        return await self._run(lambda tx: _events(tx, scope, kind, since), write=False)

    async def settings_and_marks(self, scope: str, user_key: str) -> tuple[dict[str, Any], list[str]]:
        """This scope's settings and the scopes of blocks forget-me kept for `user_key`
        (bot/store/block_marks.py; none for almost everyone), in one read."""
        return await self._run(lambda tx: (_settings(tx, scope), marked_scopes(tx, user_key)),
                               write=False)

    async def restore_blocks(self, user_key: str) -> list[str]:
        """Blocks forget-me kept for this key become blocks on it again; the scopes
        restored (none when there were none, or another process restored them first)."""
        now = self.clock()
        return await self._run(lambda tx: restore_blocks(tx, user_key, now))

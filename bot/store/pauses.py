"""Pauses of video generation, kept in the store so every process sharing it sees them.

A pause has a scope ("*" = everywhere, or one workspace key), a kind ("fal_account":
set by the bot when fal refuses the operator's key or account; "admin": set by an
admin), a reason, who set it and since when. One row per (scope, kind): setting a
pause that is already there changes nothing and says so, which is how "tell the
operator once" holds across processes. See `bot.pause` for what a pause means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from .queries import SqlTx

T = TypeVar("T")

EVERYWHERE = "*"


@dataclass(frozen=True)
class PauseRow:
    scope: str
    kind: str
    reason: str
    by: str
    since: datetime


def set_pause(tx: SqlTx, row: PauseRow) -> bool:
    """Record a pause; False when one of that scope and kind was there already."""
    from .codec import encode_time  # codec imports the protocol, which imports this

    cursor = tx.execute(
        """INSERT INTO pauses (scope, kind, reason, by_name, since) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (scope, kind) DO NOTHING""",
        (row.scope, row.kind, row.reason, row.by, encode_time(row.since)))
    return cursor.rowcount == 1


def clear_pauses(tx: SqlTx, scope: str, kinds: Sequence[str]) -> int:
    """End the pauses of `scope` of these kinds; how many there were."""
    if not kinds:
        return 0
    marks = ", ".join("?" for _ in kinds)
    cursor = tx.execute(f"DELETE FROM pauses WHERE scope = ? AND kind IN ({marks})",
                        (scope, *kinds))
    return max(0, cursor.rowcount)


def pauses_for(tx: SqlTx, scopes: Sequence[str]) -> list[PauseRow]:
    """The pauses that apply to any of `scopes`, oldest first."""
    from .codec import required_time  # codec imports the protocol, which imports this

    if not scopes:
        return []
    marks = ", ".join("?" for _ in scopes)
    rows = tx.fetch(f"SELECT * FROM pauses WHERE scope IN ({marks}) ORDER BY since, kind",
                    tuple(scopes))
    return [PauseRow(scope=r["scope"], kind=r["kind"], reason=r["reason"], by=r["by_name"],
                     since=required_time(r["since"])) for r in rows]


class PauseMethods:
    """The store's pause methods, mixed into `SqlStore` (each one transaction)."""

    async def run(self, body: Callable[[SqlTx], T], *, write: bool = True) -> T:
        raise NotImplementedError  # the store's own `run`

    async def set_pause(self, row: PauseRow) -> bool:
        """Record a pause; False when one of that scope and kind was set already."""
        return await self.run(lambda tx: set_pause(tx, row))

    async def clear_pauses(self, scope: str, kinds: Sequence[str]) -> int:
        """End the pauses of `scope` of these kinds; returns how many ended."""
        return await self.run(lambda tx: clear_pauses(tx, scope, kinds))

    async def pauses(self, scopes: Sequence[str] = (EVERYWHERE,)) -> list[PauseRow]:
        """The pauses that apply to any of `scopes` ("*" = everywhere)."""
        return await self.run(lambda tx: pauses_for(tx, scopes), write=False)


class PauseStore(Protocol):
    """The pause part of the `Store` protocol."""

    async def set_pause(self, row: PauseRow) -> bool: ...
    async def clear_pauses(self, scope: str, kinds: Sequence[str]) -> int: ...
    async def pauses(self, scopes: Sequence[str] = (EVERYWHERE,)) -> list[PauseRow]: ...

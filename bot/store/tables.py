"""What the small table wrappers over a `Store` share (community settings, moderation,
moderation-log posts, forget-me requests): the store, its clock, and a transaction
body that is handed the SQL transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from .protocol import LedgerTx, Store
from .queries import SqlTx

T = TypeVar("T")


def _sql(tx: LedgerTx) -> SqlTx:
    # Both stores hand their bodies a SqlTx; the protocol names only the ledger's part.
    if not isinstance(tx, SqlTx):
        raise TypeError(f"a SQL store's transaction was expected, got {type(tx).__name__}")
    return tx


class StoreTables:
    """Tables of one `Store`; `clock` is the store's (wall-clock UTC, the same in every
    process)."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    async def _run(self, body: Callable[[SqlTx], T], *, write: bool = True) -> T:
        return await self.store.run(lambda tx: body(_sql(tx)), write=write)

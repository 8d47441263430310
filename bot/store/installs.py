"""Installations of the bot in many workspaces of a platform, and the OAuth states of the
installs in progress: two small tables of the store (migration v8), on SQLite and
PostgreSQL alike, so that every process sharing the store sees every installation and
any process can finish an install that another began.

The store keeps an installation as an opaque `sealed` text: the adapter encrypts it
before it comes here (a token is never written in the clear) and decrypts what it reads.
A workspace is keyed by (platform, enterprise, workspace); "" stands for none (an
organisation-wide install has no workspace, a plain one no enterprise).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .base import SqlStore
from .codec import encode_time
from .queries import SqlTx


class Installations:
    """The installations and OAuth states of one platform, in `store`."""

    def __init__(self, store: SqlStore, platform: str) -> None:
        self.store = store
        self.platform = platform

    async def save(self, enterprise: str, workspace: str, sealed: str) -> None:
        """Add the installation, or replace it (a reinstall brings a new token)."""
        now = encode_time(self.store.clock())

        def body(tx: SqlTx) -> None:
            tx.execute(
                """INSERT INTO installations (platform, enterprise, workspace, sealed, installed_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (platform, enterprise, workspace)
                   DO UPDATE SET sealed = excluded.sealed, installed_at = excluded.installed_at""",
                (self.platform, enterprise, workspace, sealed, now))

        await self.store.run(body)

    async def find(self, enterprise: str, workspace: str) -> str | None:
        def body(tx: SqlTx) -> str | None:
            row = tx.execute(
                """SELECT sealed FROM installations
                   WHERE platform = ? AND enterprise = ? AND workspace = ?""",
                (self.platform, enterprise, workspace)).fetchone()
            return None if row is None else str(row["sealed"])

        return await self.store.run(body, write=False)

    async def delete(self, enterprise: str, workspace: str) -> bool:
        """Forget the installation (uninstalled, or its tokens revoked); False when unknown."""
        def body(tx: SqlTx) -> bool:
            cursor = tx.execute(
                "DELETE FROM installations WHERE platform = ? AND enterprise = ? AND workspace = ?",
                (self.platform, enterprise, workspace))
            return bool(cursor.rowcount == 1)

        return await self.store.run(body)

    async def count(self) -> int:
        def body(tx: SqlTx) -> int:
            row = tx.execute("SELECT COUNT(*) AS n FROM installations WHERE platform = ?",
                             (self.platform,)).fetchone()
            return int(row["n"]) if row is not None else 0

        return await self.store.run(body, write=False)

    async def issue_state(self, state: str, seconds: float) -> None:
        """Remember an OAuth state for `seconds` (and drop the states that ran out)."""
        now = self.store.clock()

        def body(tx: SqlTx) -> None:
            tx.execute("DELETE FROM oauth_states WHERE expires_at < ?", (encode_time(now),))
            tx.execute("INSERT INTO oauth_states (state, expires_at) VALUES (?, ?)",
                       (state, encode_time(now + timedelta(seconds=seconds))))

        await self.store.run(body)

    async def consume_state(self, state: str) -> bool:
        """True exactly once for a state that was issued and has not run out."""
        now: datetime = self.store.clock()

        def body(tx: SqlTx) -> bool:
            cursor = tx.execute("DELETE FROM oauth_states WHERE state = ? AND expires_at >= ?",
                                (state, encode_time(now)))
            return bool(cursor.rowcount == 1)

        return await self.store.run(body)

"""forget-me requests waiting for their confirmation, on either backend.

One table (`forget_requests`): a row per user who typed `forget-me` and has not yet
pressed Forget me, with when the request runs out. Asking writes (or renews) the
user's row; the button consumes it in one statement (`DELETE ... WHERE expires_at >=
now`), so a press counts once even when two processes take two presses at the same
moment, and only for the user who asked. Forgetting a user drops their row in the
forget transaction (it names them). Rows that ran out go whenever anyone asks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .codec import encode_time
from .queries import SqlTx
from .tables import StoreTables


def drop_user(tx: SqlTx, user_key: str) -> None:
    """The forget transaction's step: a pending request names the user."""
    tx.execute("DELETE FROM forget_requests WHERE user_key = ?", (user_key,))


class ForgetRequests(StoreTables):
    """The `forget_requests` table of one `Store`."""

    async def ask(self, user_key: str, seconds: float) -> None:
        """Remember that `user_key` asked, for `seconds` (a new ask starts the time again)."""
        now = self.clock()
        expires = encode_time(now + timedelta(seconds=seconds))

        def body(tx: SqlTx) -> None:
            tx.execute("DELETE FROM forget_requests WHERE expires_at < ?", (encode_time(now),))
            tx.execute("""INSERT INTO forget_requests (user_key, expires_at) VALUES (?, ?)
                          ON CONFLICT (user_key) DO UPDATE SET expires_at = excluded.expires_at""",
                       (user_key, expires))

        await self._run(body)

    async def confirm(self, user_key: str) -> bool:
        """True exactly once for a request of `user_key` that has not run out."""
        now: datetime = self.clock()

        def body(tx: SqlTx) -> bool:
            cursor = tx.execute(
                "DELETE FROM forget_requests WHERE user_key = ? AND expires_at >= ?",
                (user_key, encode_time(now)))
            return bool(cursor.rowcount == 1)

        return await self._run(body)

    async def withdraw(self, user_key: str) -> None:
        """Drop the user's request (they were forgotten another way)."""
        await self._run(lambda tx: drop_user(tx, user_key))

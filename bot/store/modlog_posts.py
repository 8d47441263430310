"""Where the moderation log's posts are and whom each is about, on either backend.

One table (`modlog_posts`): a row per post and user it names (a job's owner; for a
report also who reported it; job 0 for a prompt the blocklist refused). A post's
text is not kept here, only its `MessageRef`: forget-me reads a user's rows, edits
each post to a neutral card through the port that posted it, and the forget
transaction deletes the rows (`bot.store.privacy`). A job's entry is edited again
when the job ends only while its row is still here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.ports import MessageRef

from .codec import decode_ref, encode_ref, encode_time
from .queries import SqlTx
from .tables import StoreTables


@dataclass(frozen=True)
class ModlogPost:
    user_key: str
    job_id: int  # 0: a refused prompt (no job)
    ref: MessageRef


def _keep(tx: SqlTx, post: ModlogPost, now: datetime) -> None:
    ref = post.ref
    tx.execute(
        """INSERT INTO modlog_posts (user_key, platform, channel, message_id, job_id, ref_json, at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (user_key, platform, channel, message_id) DO NOTHING""",
        (post.user_key, ref.platform, ref.channel, ref.id, post.job_id, encode_ref(ref),
         encode_time(now)))


def _of_user(tx: SqlTx, user_key: str) -> list[ModlogPost]:
    rows = tx.fetch("SELECT job_id, ref_json FROM modlog_posts WHERE user_key = ? "
                    "ORDER BY at, message_id", (user_key,))
    posts = []
    for row in rows:
        ref = decode_ref(row["ref_json"])
        if ref is not None:
            posts.append(ModlogPost(user_key, int(row["job_id"]), ref))
    return posts


def _listed(tx: SqlTx, ref: MessageRef) -> bool:
    rows = tx.fetch("SELECT 1 AS one FROM modlog_posts WHERE platform = ? AND channel = ? "
                    "AND message_id = ? LIMIT 1", (ref.platform, ref.channel, ref.id))
    return bool(rows)


def drop_user(tx: SqlTx, user_key: str) -> None:
    """The forget transaction's step: the user's rows go (their posts were edited)."""
    tx.execute("DELETE FROM modlog_posts WHERE user_key = ?", (user_key,))


class ModlogPosts(StoreTables):
    """The `modlog_posts` table of one `Store`."""

    async def keep(self, ref: MessageRef, job_id: int, *user_keys: str) -> None:
        """Remember a post about these users (a job's owner, a reporter)."""
        now = self.clock()

        def body(tx: SqlTx) -> None:
            for key in dict.fromkeys(user_keys):
                _keep(tx, ModlogPost(key, job_id, ref), now)

        await self._run(body)

    async def of_user(self, user_key: str) -> list[ModlogPost]:
        """The posts about this user, oldest first (one row per post)."""
        return await self._run(lambda tx: _of_user(tx, user_key), write=False)

    async def listed(self, ref: MessageRef) -> bool:
        """Whether the post is still about someone (False once forget-me scrubbed it)."""
        return await self._run(lambda tx: _listed(tx, ref), write=False)

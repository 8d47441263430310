"""Moderation-log entries about a user that forget-me cannot find.

Since schema v9 the bot remembers where each moderation-log entry about a user is
(`modlog_posts`), and forget-me edits each one to a neutral card. Entries posted
before that were never remembered: nothing says which message in which channel they
are, so the bot cannot edit them, and it does not pretend to. Instead it counts the
user's jobs and blocklist refusals made in a server that has a moderation log now
and that have no remembered entry, and the forget reply says that up to that many
older entries could not be found and that a moderator must delete them by hand
(docs/PRIVACY.md). The count errs on the side of telling: a job from before the
server set its log, or whose entry could not be posted, counts as well.
"""

from __future__ import annotations

from bot.community.safety import BLOCKLIST_EVENT
from bot.community.settings import ServerSettings
from bot.config import Settings
from bot.model import JobRecord
from bot.ports import Place
from bot.store import SqlStore
from bot.store.community import Community
from bot.store.modlog_posts import ModlogPost
from bot.store.tables import _sql


class _Logs:
    """Whether a server has a moderation log, asked once per server."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.server = ServerSettings(settings, Community(store, store.clock))
        self.known: dict[tuple[str, str | None], bool] = {}

    async def has_log(self, platform: str, workspace: str | None) -> bool:
        if workspace is None or workspace == "-":
            return False  # no server, so no server's log (direct messages are never logged)
        key = (platform, workspace)
        if key not in self.known:
            safety = await self.server.safety(Place(platform=platform, channel="",
                                                    workspace=workspace))
            self.known[key] = bool(safety.mod_log_channel)
        return self.known[key]


async def unfound(store: SqlStore, settings: Settings, user_key: str, jobs: list[JobRecord],
                  entries: list[ModlogPost]) -> int:
    """How many entries about the user may be in a moderation log without a record of
    where (read before the forget transaction renames their rows)."""
    logs = _Logs(store, settings)
    remembered = {post.job_id for post in entries if post.job_id}
    missing = 0
    for job in jobs:
        if job.id not in remembered and await logs.has_log(job.place.platform,
                                                           job.place.workspace):
            missing += 1
    rows = await store.run(lambda tx: _sql(tx).fetch(
        "SELECT scope FROM safety_events WHERE user_key = ? AND kind = ?",
        (user_key, BLOCKLIST_EVENT)), write=False)
    refused = 0
    for row in rows:
        platform, _, workspace = str(row["scope"]).partition(":")
        refused += await logs.has_log(platform, workspace)
    return missing + max(0, refused - sum(1 for post in entries if not post.job_id))

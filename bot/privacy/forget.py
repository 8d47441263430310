"""Forgetting a user: `forget-me` (after they confirm) and `admin forget <user>`.

In order: their unfinished jobs are cancelled (refunded as any cancel), the bot's
own posts of their jobs are deleted where the platform lets it, then one store
transaction moves their money to an opaque `forgotten:<hash>` key and empties every
text that names them or holds their words; the moderation log's entries about them
are edited to a neutral card (read before the transaction drops their rows; entries
from before the bot remembered them are counted and named in the reply, see
`modlog_gaps`); then the files outside the database go
(saved videos, terminal history, log lines) and the database files are compacted
so the old text is not left in free pages. What stays: the amounts, the model,
sizes and times of each job, and the channel and server it ran in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.community import modlog
from bot.config import Settings
from bot.errors import UserError
from bot.jobs import JobRunner
from bot.logfile import log_file_path
from bot.model import JobRecord
from bot.ports import MessageRef, User
from bot.store import SqlStore, SqlTx
from bot.store.modlog_posts import ModlogPosts
from bot.store.privacy import forget_user, forgotten_key, jobs_of, unfinished_of

from .compact import compact
from .export import my_data_filename
from .fal_delete import FalDeletion, delete_at_fal
from .files import history_path, needles_for, remove_files, scrub_logs
from .modlog_gaps import unfound

log = logging.getLogger(__name__)


@dataclass
class Forgotten:
    """What forgetting one user did, for the reply and the tests."""

    user_key: str
    new_key: str = ""
    cancelled: list[int] = field(default_factory=list)
    jobs: int = 0
    posts_deleted: int = 0
    posts_kept: int = 0
    modlog_edited: int = 0
    modlog_unfound: int = 0  # older entries the bot has no record of (modlog_gaps)
    files_removed: int = 0
    log_lines: int = 0
    compacted: str = ""
    at_fal: list[FalDeletion] = field(default_factory=list)

    def text(self) -> str:
        if not self.new_key:
            return "The bot holds nothing about that user to forget."
        parts = [f"Forgotten: {self.jobs} job(s) scrubbed"]
        if self.cancelled:
            parts.append(f"{len(self.cancelled)} unfinished job(s) cancelled and refunded")
        parts.append(f"{self.posts_deleted} post(s) deleted")
        if self.posts_kept:
            parts.append(f"{self.posts_kept} post(s) could not be deleted here (delete them by hand)")
        if self.modlog_edited:
            parts.append(f"{self.modlog_edited} moderation-log entry(ies) made anonymous")
        if self.modlog_unfound:
            parts.append(f"up to {self.modlog_unfound} older moderation-log entry(ies) could "
                         "not be found (the bot kept no record of where they were posted): a "
                         "moderator must delete them by hand")
        if self.files_removed:
            parts.append(f"{self.files_removed} saved file(s) removed")
        text = ", ".join(parts) + ". Only the amounts spent stay, under an anonymous key."
        kept = [d for d in self.at_fal if not d.deleted]
        if kept:
            text += f" {kept[0].sentence()}"
        elif self.at_fal:
            text += " fal deleted its copies of your requests and videos too."
        return text


async def forget(store: SqlStore, runner: JobRunner, settings: Settings, who: User,
                 by: User) -> Forgotten:
    """Forget `who` (their own request, or an admin's `by`); see the module docstring."""
    result = Forgotten(user_key=who.key)
    row = await store.get_user(who.key)
    if row is None:
        return result
    for job_id in await store.run(lambda tx: unfinished_of(tx, who.key), write=False):
        try:
            await runner.cancel(job_id, by)
            result.cancelled.append(job_id)
        except UserError as exc:  # ended meanwhile: its record is scrubbed all the same
            log.info("job %d: not cancelled before forgetting: %s", job_id, exc.message)
    jobs = await store.run(lambda tx: jobs_of(tx, who.key), write=False)
    await _delete_posts(runner, jobs, result)
    await _delete_at_fal(runner, settings, jobs, result)
    new_key = forgotten_key(who.key)
    now = store.clock()
    entries = await ModlogPosts(store, store.clock).of_user(who.key)
    result.modlog_unfound = await unfound(store, settings, who.key, jobs, entries)
    result.jobs = await store.run(lambda tx: _scrub(tx, who.key, new_key, now))
    result.new_key = new_key
    result.modlog_edited = await modlog.neutralize(entries, runner.port_for)
    saved = [Path(p) for job in jobs for p in _saved_paths(job)]
    if _on_this_machine(runner, who):  # the terminal chat's own files of this user
        saved.append(history_path(settings.data_dir, who.id))
        saved.append(Path(settings.media.output_dir) / my_data_filename(who))
    result.files_removed = remove_files(saved)
    needles = needles_for(who.key, row.platform_id, row.name, (j.prompt for j in jobs))
    result.log_lines = scrub_logs(log_file_path(settings).parent, needles)
    url = settings.database.url.get_secret_value() if settings.database.url else None
    result.compacted = await compact(store, url)
    log.info("forgot a user: %d jobs scrubbed (%s)", result.jobs, result.compacted)
    return result


async def _delete_at_fal(runner: JobRunner, settings: Settings, jobs: list[JobRecord],
                         result: Forgotten) -> None:
    """fal's copies of the jobs that reached it (the request ids go with the scrub)."""
    for job in jobs:
        if job.fal_request_id:
            done = await delete_at_fal(runner.fetcher.http, settings, runner.fal.rest_url,
                                       job.fal_request_id)
            result.at_fal.append(done)


def _scrub(tx: SqlTx, user_key: str, new_key: str, now: datetime) -> int:
    if tx.dialect.name == "sqlite":
        # Freed bytes of the rewritten rows are zeroed, not left in the pages.
        tx.execute("PRAGMA secure_delete = ON")
    return forget_user(tx, user_key, new_key, now)


async def _delete_posts(runner: JobRunner, jobs: list[JobRecord], result: Forgotten) -> None:
    """The bot's status cards and videos of these jobs, each deleted once where a
    connected platform can (a surface that saves files has nothing to delete)."""
    seen: set[tuple[str, str, str]] = set()
    for job in jobs:
        for ref in (job.result_message, job.status_message):
            if ref is None or ref.deleted or (ref.platform, ref.channel, ref.id) in seen:
                continue
            seen.add((ref.platform, ref.channel, ref.id))
            if not await _delete_one(runner, ref):
                result.posts_kept += 1
            else:
                result.posts_deleted += 1


async def _delete_one(runner: JobRunner, ref: MessageRef) -> bool:
    port = runner.port_for(ref.platform)
    if port is None:
        return False
    try:
        await port.delete(ref)
    except Exception as exc:  # gone already, or no permission: the record is scrubbed anyway
        log.info("could not delete a post while forgetting: %s", type(exc).__name__)
        return False
    return True


def _on_this_machine(runner: JobRunner, who: User) -> bool:
    """Whether the user's surface keeps files here (the terminal chat: history, my-data)."""
    port = runner.port_for(who.platform)
    return port is not None and port.traits.local_files


def _saved_paths(job: JobRecord) -> list[str]:
    return [ref.saved_path for ref in (job.result_message, job.status_message)
            if ref is not None and ref.saved_path]

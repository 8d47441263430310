"""What the privacy and accounting features read and change in the store: the usage
export, forgetting a user, their data as a file, and the retention purge.

Each function is one step of a transaction (`store.run(lambda tx: ...)`), written once
in the shared SQL of both backends. What is kept after a scrub is the money: every
ledger amount stays, under an opaque user key, so the totals still add up and
`Store.audit()` stays empty. Compacting the database files afterwards (so that the
scrubbed text is not left in free pages or the WAL) differs by backend and lives in
`bot.privacy.compact`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from bot.model import JobRecord

from .block_marks import keep_blocks
from .codec import encode_time, job_from_row
from .forget_requests import drop_user as drop_forget_request
from .modlog_posts import drop_user
from .protocol import UsageRow
from .queries import SqlTx
from .schema import FINAL_SQL

ExportBy = Literal["user", "workspace", "model"]
# The key DMs are exported under in a by-workspace export (their ledger rows have none).
NO_WORKSPACE = "-"
FORGOTTEN_NAME = "forgotten user"
# Tables a scrub or a purge rewrites: the ones PostgreSQL vacuums afterwards.
TOUCHED_TABLES = ("jobs", "users", "ledger", "usage_totals", "safety_events", "reports",
                  "admin_audit", "workspace_settings", "modlog_posts", "forget_requests")

_EXPORT_SQL: dict[ExportBy, str] = {
    "user": """
        SELECT l.user_key AS key, COALESCE(MAX(u.name), l.user_key) AS name,
               COUNT(DISTINCT l.job_id) AS jobs, SUM(l.credits) AS credits, SUM(l.usd) AS usd
        FROM ledger l LEFT JOIN users u ON u.key = l.user_key
        WHERE l.kind != 'grant' AND l.charged_at >= ? AND l.charged_at < ?
        GROUP BY l.user_key ORDER BY credits DESC, key""",
    "workspace": f"""
        SELECT COALESCE(workspace_key, '{NO_WORKSPACE}') AS key,
               COALESCE(workspace_key, 'direct messages') AS name,
               COUNT(DISTINCT job_id) AS jobs, SUM(credits) AS credits, SUM(usd) AS usd
        FROM ledger WHERE kind != 'grant' AND charged_at >= ? AND charged_at < ?
        GROUP BY workspace_key ORDER BY credits DESC, key""",
    "model": """
        SELECT j.endpoint_id AS key, j.endpoint_id AS name,
               COUNT(DISTINCT l.job_id) AS jobs, SUM(l.credits) AS credits, SUM(l.usd) AS usd
        FROM ledger l JOIN jobs j ON j.id = l.job_id
        WHERE l.kind != 'grant' AND l.charged_at >= ? AND l.charged_at < ?
        GROUP BY j.endpoint_id ORDER BY credits DESC, key""",
}


def usage_export(tx: SqlTx, by: ExportBy, since: datetime, until: datetime) -> list[UsageRow]:
    """Jobs, credits and USD per user, workspace or model, of the ledger rows charged in
    [since, until): every non-grant row lands in exactly one export row."""
    rows = tx.fetch(_EXPORT_SQL[by], (encode_time(since), encode_time(until)))
    return [UsageRow(key=r["key"], name=r["name"], jobs=r["jobs"], credits=int(r["credits"]),
                     usd=round(float(r["usd"]), 6) + 0.0) for r in rows]


# ---------------------------------------------------------------- forgetting a user


def forgotten_key(user_key: str) -> str:
    """An opaque key for a forgotten user: a hash of their key and a random salt, so it
    can neither be reversed nor recomputed from a guessed id."""
    digest = hashlib.sha256(f"{secrets.token_hex(16)}:{user_key}".encode()).hexdigest()
    return f"forgotten:{digest[:24]}"


# Other parts of the store (the moderation log, the admin audit table) register a scrub
# of their own rows here: (tx, old user key, new opaque key) -> None, run in the same
# transaction as the scrub of the jobs.
EXTRA_SCRUBS: list[Callable[[SqlTx, str, str], None]] = []


def _scrub_moderation_rows(tx: SqlTx, user_key: str, new_key: str) -> None:
    """The safety tables name the user by key (a report also by name, a block from the
    moderation log in a setting's name): they follow the opaque key, names go. Counts and
    the audit trail keep adding up; nothing there holds a prompt."""
    tx.execute("UPDATE safety_events SET user_key = ? WHERE user_key = ?", (new_key, user_key))
    tx.execute("UPDATE reports SET user_key = ?, user_name = '' WHERE user_key = ?",
               (new_key, user_key))
    tx.execute("UPDATE admin_audit SET actor = ? WHERE actor = ?", (new_key, user_key))
    tx.execute("UPDATE admin_audit SET target = ? WHERE target = ?", (new_key, user_key))
    # A block stays on whoever comes back with this key (a hash of it, bot/store/block_marks.py):
    # being forgotten is not a way round a block.
    keep_blocks(tx, user_key)
    # The moderation log's posts about the user were edited to a neutral card before.
    drop_user(tx, user_key)


EXTRA_SCRUBS.append(_scrub_moderation_rows)
# A forget-me request still waiting for its button names the user: it goes too.
EXTRA_SCRUBS.append(lambda tx, user_key, _new_key: drop_forget_request(tx, user_key))

# Every column of a job that holds the user's words, their name, their files' URLs or a
# reference to a message: emptied or nulled. A cancel left for another process stays
# asked for, without the name of who asked.
_JOB_TEXT_SCRUB = """
    prompt = '', input_json = '{}', result_json = NULL, result_url = NULL,
    error_message = NULL, status_message_json = NULL, result_message_json = NULL,
    interaction_token = NULL, fal_request_id = NULL, owner_roles_json = NULL,
    cancel_requested = CASE WHEN cancel_requested IS NULL THEN NULL ELSE 'forget-me' END"""


def forget_user(tx: SqlTx, user_key: str, new_key: str, now: datetime) -> int:
    """Move the user's money to `new_key` and scrub everything that names them or holds
    their words; returns how many of their jobs were scrubbed. The user row is
    recreated under the new key (tier, block and granted balance kept, so the ledger
    still balances), since keys are referenced by the ledger and the jobs."""
    row = tx.get_user(user_key)
    if row is None:
        return 0
    at = encode_time(now)
    # "forgotten" stands as the platform too: a job's owner key is platform:id.
    platform, _, opaque_id = new_key.partition(":")
    tx.execute(
        """INSERT INTO users (key, platform, platform_id, name, tier, blocked, bonus_credits,
                              created_at, updated_at)
           SELECT ?, ?, ?, ?, tier, blocked, bonus_credits, created_at, ?
           FROM users WHERE key = ?""",
        (new_key, platform, opaque_id, FORGOTTEN_NAME, at, user_key))
    cursor = tx.execute(
        f"""UPDATE jobs SET owner_key = ?, owner_platform = ?, owner_id = ?, owner_name = ?,
                   {_JOB_TEXT_SCRUB}, updated_at = ? WHERE owner_key = ?""",
        (new_key, platform, opaque_id, FORGOTTEN_NAME, at, user_key))
    scrubbed = cursor.rowcount
    tx.execute("UPDATE ledger SET user_key = ? WHERE user_key = ?", (new_key, user_key))
    # Grants name who made them ("by platform:id"): a forgotten admin is not named either.
    tx.execute("UPDATE ledger SET note = '' WHERE note = ?", (f"by {user_key}",))
    tx.execute("UPDATE usage_totals SET key = ? WHERE key = ? AND scope IN ('user_day', 'user_month')",
               (new_key, user_key))
    for scrub in EXTRA_SCRUBS:
        scrub(tx, user_key, new_key)
    tx.execute("DELETE FROM users WHERE key = ?", (user_key,))
    return scrubbed


def unfinished_of(tx: SqlTx, user_key: str) -> list[int]:
    rows = tx.fetch(f"SELECT id FROM jobs WHERE owner_key = ? AND state NOT IN {FINAL_SQL} "
                    "ORDER BY id", (user_key,))
    return [int(r["id"]) for r in rows]


def jobs_of(tx: SqlTx, user_key: str) -> list[JobRecord]:
    return [job_from_row(r) for r in tx.fetch(
        "SELECT * FROM jobs WHERE owner_key = ? ORDER BY id", (user_key,))]


# ---------------------------------------------------------------- a user's data

# Other parts of the store add their rows about a user to `my-data` here:
# (tx, user key) -> (name of the section, its rows as plain values).
EXTRA_EXPORTS: list[Callable[[SqlTx, str], tuple[str, list[dict[str, Any]]]]] = []


def _moderation_rows(tx: SqlTx, user_key: str) -> tuple[str, list[dict[str, Any]]]:
    """What the safety tables hold about the user: reports they made, prompts of theirs a
    blocklist refused (counted, never the prompt), admin actions by or about them, and
    where the moderation log's posts about them are."""
    rows = [{"table": "reports", **_plain(r)} for r in tx.fetch(
        "SELECT job_id, scope, at FROM reports WHERE user_key = ? ORDER BY at", (user_key,))]
    rows += [{"table": "safety_events", **_plain(r)} for r in tx.fetch(
        "SELECT scope, kind, channel, at FROM safety_events WHERE user_key = ? ORDER BY at",
        (user_key,))]
    rows += [{"table": "admin_audit", **_plain(r)} for r in tx.fetch(
        "SELECT at, actor, scope, action, target FROM admin_audit WHERE actor = ? OR target = ?"
        " ORDER BY at", (user_key, user_key))]
    rows += [{"table": "modlog_posts", **_plain(r)} for r in tx.fetch(
        "SELECT job_id, platform, channel, message_id, at FROM modlog_posts WHERE user_key = ?"
        " ORDER BY at", (user_key,))]
    return "moderation", rows


EXTRA_EXPORTS.append(_moderation_rows)


def _forget_request(tx: SqlTx, user_key: str) -> tuple[str, list[dict[str, Any]]]:
    """A forget-me of theirs still waiting for its button (when it runs out)."""
    return "forget_requests", [_plain(r) for r in tx.fetch(
        "SELECT expires_at FROM forget_requests WHERE user_key = ?", (user_key,))]


EXTRA_EXPORTS.append(_forget_request)


def user_data(tx: SqlTx, user_key: str) -> dict[str, Any]:
    """Every row the store holds about one user, as plain JSON-able values."""
    user = tx.fetch("SELECT * FROM users WHERE key = ?", (user_key,))
    jobs = tx.fetch("SELECT * FROM jobs WHERE owner_key = ? ORDER BY id", (user_key,))
    ledger = tx.fetch("SELECT * FROM ledger WHERE user_key = ? ORDER BY id", (user_key,))
    usage = tx.fetch("SELECT scope, period, credits, bonus FROM usage_totals WHERE key = ? "
                     "ORDER BY scope, period", (user_key,))
    data: dict[str, Any] = {"user": _plain(user[0]) if user else None,
                            "jobs": [_plain(r, drop=("interaction_token",)) for r in jobs],
                            "ledger": [_plain(r) for r in ledger],
                            "usage_totals": [_plain(r) for r in usage]}
    for export in EXTRA_EXPORTS:
        name, rows = export(tx, user_key)
        data[name] = rows
    return data


def _plain(row: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    # A live interaction token is a credential of the bot, not the user's data.
    return {k: encode_time(v) if isinstance(v, datetime) else v
            for k, v in dict(row).items() if k not in drop}


# ---------------------------------------------------------------- retention


def expired_jobs(tx: SqlTx, before: datetime) -> list[JobRecord]:
    """Finished jobs created before `before` that still hold text or URLs."""
    rows = tx.fetch(
        f"""SELECT * FROM jobs WHERE created_at < ? AND state IN {FINAL_SQL}
            AND (prompt != '' OR input_json != '{{}}' OR result_json IS NOT NULL
                 OR result_url IS NOT NULL OR error_message IS NOT NULL
                 OR result_message_json IS NOT NULL OR status_message_json IS NOT NULL)
            ORDER BY id""",
        (encode_time(before),))
    return [job_from_row(r) for r in rows]


def purge_jobs(tx: SqlTx, job_ids: list[int], now: datetime) -> int:
    """Empty the text, URLs and message references of these jobs; amounts stay."""
    purged = 0
    for job_id in job_ids:
        cursor = tx.execute(f"UPDATE jobs SET {_JOB_TEXT_SCRUB}, updated_at = ? WHERE id = ?",
                            (encode_time(now), job_id))
        purged += cursor.rowcount
    return purged

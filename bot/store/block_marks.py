"""Blocks that outlast forget-me, on either backend.

forget-me moves a user's rows to an opaque key; without more, a blocked user could lift
every block on themselves by asking to be forgotten, and come back fresh. So the forget
transaction keeps, for each block on the user (the operator's block, scope "*", and each
server's moderation-log block, scope = the server), one row in `block_marks`: a hash of
their key and the scope, nothing else. When that key is seen again (the safety check
before any job, `bot/community/moderation.refuse_blocked`), its marks become ordinary
blocks on the key once more, which admins see and lift as before, and the marks go.

The hash names no one by itself; whoever holds the database and guesses an id can test
it (ids are not secret), which is what recognising a returning user means.
docs/PRIVACY.md says so.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from .codec import encode_time
from .queries import SqlTx

EVERYWHERE = "*"  # the operator's block (users.blocked)
BLOCK_PREFIX = "blocked_user:"  # a server's block: a workspace setting named so
_DOMAIN = "ltx-bot block mark v1\0"


def mark_of(user_key: str) -> str:
    return hashlib.sha256((_DOMAIN + user_key).encode()).hexdigest()


def keep_blocks(tx: SqlTx, user_key: str) -> int:
    """The forget transaction's step, before the user's rows move: a mark per block on
    `user_key`; the server blocks themselves go (the mark carries them). How many."""
    name = BLOCK_PREFIX + user_key
    rows = tx.fetch("SELECT scope, value_json FROM workspace_settings WHERE name = ?", (name,))
    scopes = [r["scope"] for r in rows if r["value_json"] == "true"]
    user = tx.get_user(user_key)
    if user is not None and user.blocked:
        scopes.append(EVERYWHERE)
    for scope in scopes:
        tx.execute("INSERT INTO block_marks (mark, scope) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (mark_of(user_key), scope))
    tx.execute("DELETE FROM workspace_settings WHERE name = ?", (name,))
    return len(scopes)


def marked_scopes(tx: SqlTx, user_key: str) -> list[str]:
    """The scopes a forgotten block of `user_key` waits in (a read: most users have none)."""
    rows = tx.fetch("SELECT scope FROM block_marks WHERE mark = ?", (mark_of(user_key),))
    return sorted(r["scope"] for r in rows)


def restore_blocks(tx: SqlTx, user_key: str, now: datetime) -> list[str]:
    """Turn the marks of `user_key` back into blocks on the key, in one transaction; the
    scopes restored (none when another process did it first)."""
    rows = tx.fetch("DELETE FROM block_marks WHERE mark = ? RETURNING scope", (mark_of(user_key),))
    scopes = sorted(r["scope"] for r in rows)
    for scope in scopes:
        if scope == EVERYWHERE:
            tx.ensure_user_key(user_key, now)
            tx.execute("UPDATE users SET blocked = 1 WHERE key = ?", (user_key,))
        else:
            tx.execute(
                """INSERT INTO workspace_settings (scope, name, value_json, updated_by, updated_at)
                   VALUES (?, ?, 'true', 'forget-me', ?)
                   ON CONFLICT (scope, name) DO UPDATE SET value_json = 'true'""",
                (scope, BLOCK_PREFIX + user_key, encode_time(now)))
    return scopes

"""The schema: tables, indexes and the migrations that build them, written once for
both backends with the type tokens of `bot.store.dialect`, and SQLite's migrator.

Each entry of MIGRATIONS moves the schema one version forward, with the same
numbers on both backends; SQLite's PRAGMA user_version records how many have run
(PostgreSQL's record and migrator live in `postgres`). Never edit a
released entry: append a new one.
"""

from __future__ import annotations

import sqlite3

from bot.model import JobState

from .dialect import POSTGRES, SQLITE

# The key of the one global row per day in usage_totals.
GLOBAL_KEY = "*"
# Job states as SQL lists, for CHECK constraints, partial indexes and queries alike.
FINAL_SQL = "(" + ", ".join(f"'{s.value}'" for s in JobState if s.final) + ")"
_STATES_SQL = "(" + ", ".join(f"'{s.value}'" for s in JobState) + ")"

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: users, jobs, ledger (balances summed from the ledger)
    (
        """CREATE TABLE users (
            key TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            platform_id TEXT NOT NULL,
            name TEXT NOT NULL,
            tier TEXT,
            blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
            bonus_credits INTEGER NOT NULL DEFAULT 0 CHECK (bonus_credits >= 0),
            created_at <time> NOT NULL,
            updated_at <time> NOT NULL
        )""",
        f"""CREATE TABLE jobs (
            id <id>,
            owner_key TEXT NOT NULL REFERENCES users(key),
            owner_platform TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            owner_name TEXT NOT NULL,
            place_platform TEXT NOT NULL,
            workspace TEXT,
            channel TEXT NOT NULL,
            thread TEXT,
            workspace_key TEXT,
            endpoint_id TEXT NOT NULL,
            input_json TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN {_STATES_SQL}),
            estimate_credits INTEGER NOT NULL CHECK (estimate_credits >= 0),
            estimate_usd <real> NOT NULL,
            settled_credits INTEGER,
            settled_usd <real>,
            fal_request_id TEXT,
            local_position INTEGER,
            queue_position INTEGER,
            progress <real>,
            status_message_json TEXT,
            result_message_json TEXT,
            interaction_token TEXT,
            interaction_expires_at <time>,
            result_url TEXT,
            result_size INTEGER,
            result_json TEXT,
            error_type TEXT,
            error_message TEXT,
            created_at <time> NOT NULL,
            updated_at <time> NOT NULL,
            started_at <time>,
            finished_at <time>,
            parent_id INTEGER REFERENCES jobs(id),
            parent_kind TEXT CHECK (parent_kind IN ('reroll', 'extend', 'continue')),
            delivered INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
        )""",
        "CREATE INDEX jobs_owner_created ON jobs(owner_key, created_at)",
        f"CREATE INDEX jobs_owner_unfinished ON jobs(owner_key) WHERE state NOT IN {FINAL_SQL}",
        f"CREATE INDEX jobs_unfinished ON jobs(id) WHERE state NOT IN {FINAL_SQL}",
        """CREATE TABLE ledger (
            id <id>,
            kind TEXT NOT NULL CHECK (kind IN ('reserve', 'settle', 'refund', 'grant')),
            credits INTEGER NOT NULL,
            bonus INTEGER NOT NULL DEFAULT 0,
            usd <real> NOT NULL DEFAULT 0,
            job_id INTEGER REFERENCES jobs(id),
            user_key TEXT NOT NULL REFERENCES users(key),
            workspace_key TEXT,
            at <time> NOT NULL,
            charged_at <time> NOT NULL,
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            CHECK ((kind = 'grant') = (job_id IS NULL))
        )""",
        # The database itself refuses a second reservation or a second closing row.
        "CREATE UNIQUE INDEX ledger_one_reserve ON ledger(job_id) WHERE kind = 'reserve'",
        "CREATE UNIQUE INDEX ledger_one_final ON ledger(job_id) WHERE kind IN ('settle', 'refund')",
        "CREATE INDEX ledger_user_day ON ledger(user_key, day)",
        "CREATE INDEX ledger_charged_at ON ledger(charged_at)",
    ),
    # 2: per-window totals kept beside the ledger, backfilled from it
    (
        """CREATE TABLE usage_totals (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            period TEXT NOT NULL,
            credits INTEGER NOT NULL DEFAULT 0,
            bonus INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, key, period)
        )<rowid>""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'user_day', user_key, day, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY user_key, day""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'user_month', user_key, month, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY user_key, month""",
        """INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'ws_month', workspace_key, month, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' AND workspace_key IS NOT NULL GROUP BY workspace_key, month""",
        f"""INSERT INTO usage_totals (scope, key, period, credits, bonus)
           SELECT 'global_day', '{GLOBAL_KEY}', day, SUM(credits), SUM(bonus) FROM ledger
           WHERE kind != 'grant' GROUP BY day""",
    ),
    # 3: platform events already handled, so a retried delivery (a platform re-sends events it
    # thinks were missed) never starts a second job, also across a restart.
    (
        """CREATE TABLE seen_events (
            event_id TEXT PRIMARY KEY,
            seen_at <time> NOT NULL
        )<rowid>""",
    ),
    # 4: several processes on one store. Each registers in `instances` and holds a lease on
    # the jobs it drives (lease_owner, lease_expires), renewed on a heartbeat; a job whose
    # lease ran out is adopted by another process with one conditional UPDATE. A cancel
    # asked in another process is left in cancel_requested for the owner to act on.
    (
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            platforms TEXT NOT NULL,
            started_at <time> NOT NULL,
            heartbeat_at <time> NOT NULL
        )<rowid>""",
        "ALTER TABLE jobs ADD COLUMN lease_owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_expires <time>",
        "ALTER TABLE jobs ADD COLUMN cancel_requested TEXT",
    ),
    # v5: pauses of video generation (bot/pause.py, bot/store/pauses.py): one row per
    # scope ("*" or a workspace key) and kind ("fal_account", "admin"), seen by every process.
    (
        """CREATE TABLE pauses (
            scope TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            by_name TEXT NOT NULL,
            since <time> NOT NULL,
            PRIMARY KEY (scope, kind)
        )<rowid>""",
    ),
    # v6: a server's own settings (only those it changed; the rest are [safety]'s
    # defaults), the audit trail of admin actions, and refused prompts counted per server
    # (who and which rule, never the prompt). See bot/store/community.py.
    (
        """CREATE TABLE workspace_settings (
            scope TEXT NOT NULL,
            name TEXT NOT NULL,
            value_json TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at <time> NOT NULL,
            PRIMARY KEY (scope, name)
        )<rowid>""",
        """CREATE TABLE admin_audit (
            id <id>,
            at <time> NOT NULL,
            actor TEXT NOT NULL,
            scope TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX admin_audit_scope_at ON admin_audit(scope, at)",
        "CREATE INDEX admin_audit_at ON admin_audit(at)",
        """CREATE TABLE safety_events (
            id <id>,
            at <time> NOT NULL,
            scope TEXT NOT NULL,
            user_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX safety_events_scope_kind_at ON safety_events(scope, kind, at)",
    ),
    # v7: the bot installed in many workspaces of a platform (OAuth): each installation's
    # data, sealed by the adapter (the store never sees a token in the clear), and the OAuth
    # states issued for installs in progress, consumed once by whichever process gets the
    # redirect.
    (
        """CREATE TABLE installations (
            platform TEXT NOT NULL,
            enterprise TEXT NOT NULL,
            workspace TEXT NOT NULL,
            sealed TEXT NOT NULL,
            installed_at <time> NOT NULL,
            PRIMARY KEY (platform, enterprise, workspace)
        )<rowid>""",
        """CREATE TABLE oauth_states (
            state TEXT PRIMARY KEY,
            expires_at <time> NOT NULL
        )<rowid>""",
    ),
    # v8: reports of finished videos (one per user and job, kept whether or not a
    # moderation log took them) and the alerts sent once per period (budget at 80%).
    # See bot/store/moderation.py.
    (
        """CREATE TABLE reports (
            job_id INTEGER NOT NULL,
            user_key TEXT NOT NULL,
            user_name TEXT NOT NULL DEFAULT '',
            scope TEXT NOT NULL,
            at <time> NOT NULL,
            logged INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (job_id, user_key)
        )<rowid>""",
        "CREATE INDEX reports_scope_at ON reports(scope, at)",
        """CREATE TABLE alerts_sent (
            alert TEXT PRIMARY KEY,
            at <time> NOT NULL
        )<rowid>""",
    ),
    # v9: where each moderation-log post is and whom it is about (job 0 for a
    # refused prompt), so forget-me can edit it to a neutral card. See
    # bot/store/modlog_posts.py.
    (
        """CREATE TABLE modlog_posts (
            user_key TEXT NOT NULL,
            platform TEXT NOT NULL,
            channel TEXT NOT NULL,
            message_id TEXT NOT NULL,
            job_id INTEGER NOT NULL DEFAULT 0,
            ref_json TEXT NOT NULL,
            at <time> NOT NULL,
            PRIMARY KEY (user_key, platform, channel, message_id)
        )<rowid>""",
    ),
    # v10: a fal-account pause gives back the reservation of every job not at fal yet
    # (bot/jobs/paused.py, bot/quota_pause.py): `unreserved` marks a job that holds none and reserves
    # again, under the limits of a new job, before it is sent. A job's ledger rows belong
    # to one `reservation` round each (its reserve and the row that closes it), so the
    # database still refuses a second reserve or closing row within one round. The
    # owner's roles and admin flag at admission make that second reservation see the
    # same tier and exemption a new command of theirs would.
    (
        "ALTER TABLE jobs ADD COLUMN unreserved INTEGER NOT NULL DEFAULT 0 "
        "CHECK (unreserved IN (0, 1))",
        "ALTER TABLE jobs ADD COLUMN owner_roles_json TEXT",
        "ALTER TABLE jobs ADD COLUMN owner_admin INTEGER NOT NULL DEFAULT 0 "
        "CHECK (owner_admin IN (0, 1))",
        "ALTER TABLE ledger ADD COLUMN reservation INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX ledger_one_reserve",
        "DROP INDEX ledger_one_final",
        "CREATE UNIQUE INDEX ledger_one_reserve ON ledger(job_id, reservation) "
        "WHERE kind = 'reserve'",
        "CREATE UNIQUE INDEX ledger_one_final ON ledger(job_id, reservation) "
        "WHERE kind IN ('settle', 'refund')",
    ),
    # v11: forget-me requests waiting for their Forget me button, one per user, so the
    # button works in whichever process takes the press. See bot/store/forget_requests.py.
    (
        """CREATE TABLE forget_requests (
            user_key TEXT PRIMARY KEY,
            expires_at <time> NOT NULL
        )<rowid>""",
    ),
    # v12: blocks that outlast forget-me: a hash of the forgotten user's key per scope of
    # a block on them ("*" or a server), turned back into blocks when the key is seen
    # again. See bot/store/block_marks.py.
    (
        """CREATE TABLE block_marks (
            mark TEXT NOT NULL,
            scope TEXT NOT NULL,
            PRIMARY KEY (mark, scope)
        )<rowid>""",
    ),
    # v13: the ledger by job. Every settle and refund reads its job's rows
    # (`charge_of`); the unique indexes above are partial (by kind), so without this
    # one each settle read the whole ledger, a cost growing with every job.
    (
        "CREATE INDEX ledger_job ON ledger(job_id)",
    ),
)
MIGRATIONS = tuple(tuple(SQLITE.ddl(s) for s in step) for step in _MIGRATIONS)
PG_MIGRATIONS = tuple(tuple(POSTGRES.ddl(s) for s in step) for step in _MIGRATIONS)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Run every migration the file has not seen, each in its own IMMEDIATE transaction."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read under the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {version} is newer than this code "
                    f"({len(MIGRATIONS)}); upgrade ltx-bot"
                )
            if version >= target:
                conn.execute("COMMIT")
                return version
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # user_version lives in the file header and commits with the transaction.
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

"""The ledger checked against what is kept beside it (see `bot.store.protocol`).

Three checks, each one query or a few: the per-window usage totals, every user's
granted balance, and every job's charge. An empty list means all agree.
"""

from __future__ import annotations

from .schema import GLOBAL_KEY
from .sqlite_tx import SqliteTx

# usage_totals scope -> the ledger query that derives its rows: (key, period, credits, bonus).
_USAGE_FROM_LEDGER: tuple[tuple[str, str], ...] = (
    ("user_day", "SELECT user_key, day, SUM(credits), SUM(bonus) FROM ledger "
                 "WHERE kind != 'grant' GROUP BY 1, 2"),
    ("user_month", "SELECT user_key, month, SUM(credits), SUM(bonus) FROM ledger "
                   "WHERE kind != 'grant' GROUP BY 1, 2"),
    ("ws_month", "SELECT workspace_key, month, SUM(credits), SUM(bonus) FROM ledger "
                 "WHERE kind != 'grant' AND workspace_key IS NOT NULL GROUP BY 1, 2"),
    ("global_day", f"SELECT '{GLOBAL_KEY}', day, SUM(credits), SUM(bonus) FROM ledger "
                   "WHERE kind != 'grant' GROUP BY 1, 2"),
)


def audit(tx: SqliteTx) -> list[str]:
    """Differences between the ledger and what is kept beside it; [] when consistent."""
    return _usage_problems(tx) + _balance_problems(tx) + _job_problems(tx)


def _usage_problems(tx: SqliteTx) -> list[str]:
    derived: dict[tuple[str, str, str], tuple[int, int]] = {}
    for scope, sql in _USAGE_FROM_LEDGER:
        for key, period, credits, bonus in tx.fetch(sql):
            derived[(scope, key, period)] = (credits, bonus)
    kept = {(r[0], r[1], r[2]): (r[3], r[4]) for r in tx.fetch(
        "SELECT scope, key, period, credits, bonus FROM usage_totals")}
    problems: list[str] = []
    for where in sorted(set(derived) | set(kept)):
        a, b = derived.get(where, (0, 0)), kept.get(where, (0, 0))
        if a != b:
            problems.append(f"usage {where}: ledger says {a}, totals say {b}")
    return problems


def _balance_problems(tx: SqliteTx) -> list[str]:
    rows = tx.fetch(
        """SELECT u.key, u.bonus_credits,
                  COALESCE((SELECT SUM(CASE WHEN kind = 'grant' THEN credits ELSE -bonus END)
                            FROM ledger l WHERE l.user_key = u.key), 0)
           FROM users u"""
    )
    return [f"granted credits of {key}: ledger says {from_ledger}, users says {kept_bonus}"
            for key, kept_bonus, from_ledger in rows if kept_bonus != from_ledger]


def _job_problems(tx: SqliteTx) -> list[str]:
    problems: list[str] = []
    for job_id, charged, settled, estimate, kinds in tx.fetch(
        # GROUP_CONCAT is SQLite's (PostgreSQL: string_agg).
        """SELECT j.id, COALESCE(SUM(l.credits), 0), j.settled_credits, j.estimate_credits,
                  COALESCE(GROUP_CONCAT(l.kind), '')
           FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id GROUP BY j.id"""
    ):
        kinds_seen = set(kinds.split(","))
        expected = (settled if "settle" in kinds_seen else 0 if "refund" in kinds_seen
                    else estimate)
        if "reserve" not in kinds_seen:
            problems.append(f"job {job_id}: no reservation")
        elif charged != expected:
            problems.append(f"job {job_id}: ledger charges {charged}, job says {expected}")
    return problems

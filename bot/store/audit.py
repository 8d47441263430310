"""The ledger checked against what is kept beside it (see `bot.store.protocol`).

Three checks, each one query or a few: the per-window usage totals, every user's
granted balance, and every job's charge. An empty list means all agree. The
queries are plain SQL that both backends run as written.
"""

from __future__ import annotations

from .queries import SqlTx, unsharded
from .schema import GLOBAL_KEY

# usage_totals scope -> the ledger query that derives its rows: (key, period, credits, bonus).
_SUMS = "SUM(credits) AS credits, SUM(bonus) AS bonus FROM ledger WHERE kind != 'grant'"
_USAGE_FROM_LEDGER: tuple[tuple[str, str], ...] = (
    ("user_day", f"SELECT user_key AS key, day AS period, {_SUMS} GROUP BY user_key, day"),
    ("user_month", f"SELECT user_key AS key, month AS period, {_SUMS} GROUP BY user_key, month"),
    ("ws_month", f"SELECT workspace_key AS key, month AS period, {_SUMS} "
                 "AND workspace_key IS NOT NULL GROUP BY workspace_key, month"),
    ("global_day", f"SELECT '{GLOBAL_KEY}' AS key, day AS period, {_SUMS} GROUP BY day"),
)


def audit(tx: SqlTx) -> list[str]:
    """Differences between the ledger and what is kept beside it; [] when consistent."""
    return _usage_problems(tx) + _balance_problems(tx) + _job_problems(tx)


def _usage_problems(tx: SqlTx) -> list[str]:
    derived: dict[tuple[str, str, str], tuple[int, int]] = {}
    for scope, sql in _USAGE_FROM_LEDGER:
        for r in tx.fetch(sql):
            derived[(scope, r["key"], r["period"])] = (r["credits"], r["bonus"])
    kept: dict[tuple[str, str, str], tuple[int, int]] = {}
    for r in tx.fetch("SELECT scope, key, period, credits, bonus FROM usage_totals"):
        where = (r["scope"], r["key"], unsharded(r["period"]))  # shards summed
        credits, bonus = kept.get(where, (0, 0))
        kept[where] = (credits + r["credits"], bonus + r["bonus"])
    problems: list[str] = []
    for where in sorted(set(derived) | set(kept)):
        a, b = derived.get(where, (0, 0)), kept.get(where, (0, 0))
        if a != b:
            problems.append(f"usage {where}: ledger says {a}, totals say {b}")
    return problems


def _balance_problems(tx: SqlTx) -> list[str]:
    rows = tx.fetch(
        """SELECT u.key AS key, u.bonus_credits AS kept,
                  COALESCE((SELECT SUM(CASE WHEN kind = 'grant' THEN credits ELSE -bonus END)
                            FROM ledger l WHERE l.user_key = u.key), 0) AS derived
           FROM users u"""
    )
    return [f"granted credits of {r['key']}: ledger says {r['derived']}, users says {r['kept']}"
            for r in rows if r["kept"] != r["derived"]]


def _job_problems(tx: SqlTx) -> list[str]:
    problems: list[str] = []
    for r in tx.fetch(
        """SELECT j.id AS id, COALESCE(SUM(l.credits), 0) AS charged,
                  j.settled_credits AS settled, j.estimate_credits AS estimate,
                  j.unreserved AS unreserved,
                  COUNT(CASE WHEN l.kind = 'reserve' THEN 1 END) AS reserves,
                  COUNT(CASE WHEN l.kind = 'settle' THEN 1 END) AS settles,
                  COUNT(CASE WHEN l.kind = 'refund' THEN 1 END) AS refunds
           FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id
           GROUP BY j.id, j.settled_credits, j.estimate_credits, j.unreserved"""
    ):
        # A pause may have given a reservation back and the job reserved again: each
        # reserve is closed by its own refund, except the open or settled last one.
        open_reserve = r["reserves"] > r["refunds"] + r["settles"]
        expected = r["settled"] if r["settles"] else r["estimate"] if open_reserve else 0
        if not r["reserves"]:
            problems.append(f"job {r['id']}: no reservation")
        elif r["charged"] != expected:
            problems.append(f"job {r['id']}: ledger charges {r['charged']}, job says {expected}")
        elif r["unreserved"] and open_reserve:
            problems.append(f"job {r['id']}: marked as holding no reservation but holds one")
    return problems

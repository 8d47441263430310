"""Reports of finished videos and alerts sent once per period, on either backend.

Two tables (migration v8): `reports` (one row per job and reporting user: the
primary key is what makes "once per user per job" hold across processes and restarts;
`logged` says whether a moderation log took it) and `alerts_sent` (one row per alert
key, e.g. `budget:global:2026-12-01`: the first process to insert it sends
the alert, every other one finds it there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .codec import encode_time, required_time
from .queries import SqlTx
from .tables import StoreTables

REPORT_LIST_LIMIT = 200


@dataclass(frozen=True)
class Report:
    job_id: int
    user_key: str
    user_name: str
    scope: str
    at: datetime
    logged: bool


def _claim_report(tx: SqlTx, report: Report) -> bool:
    cursor = tx.execute(
        """INSERT INTO reports (job_id, user_key, user_name, scope, at, logged)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, user_key) DO NOTHING""",
        (report.job_id, report.user_key, report.user_name, report.scope,
         encode_time(report.at), int(report.logged)))
    return cursor.rowcount == 1


def _reports(tx: SqlTx, scope: str | None, since: datetime) -> list[Report]:
    where = "at >= ?" + ("" if scope is None else " AND scope = ?")
    params: tuple[Any, ...] = (encode_time(since),) + (() if scope is None else (scope,))
    rows = tx.fetch(f"SELECT * FROM reports WHERE {where} ORDER BY at DESC, job_id DESC "
                    f"LIMIT {REPORT_LIST_LIMIT}", params)
    return [Report(job_id=int(r["job_id"]), user_key=r["user_key"], user_name=r["user_name"],
                   scope=r["scope"], at=required_time(r["at"]), logged=bool(r["logged"])) for r in rows]


def _claim_alert(tx: SqlTx, alert: str, now: datetime) -> bool:
    cursor = tx.execute(
        "INSERT INTO alerts_sent (alert, at) VALUES (?, ?) ON CONFLICT (alert) DO NOTHING",
        (alert, encode_time(now)))
    return cursor.rowcount == 1


class Moderation(StoreTables):
    """The reports and alerts tables of one `Store`."""

    async def report(self, job_id: int, user_key: str, user_name: str, scope: str,
                     *, logged: bool) -> bool:
        """Keep one report; False when this user had reported this job already."""
        row = Report(job_id, user_key, user_name, scope, self.clock(), logged)
        return await self._run(lambda tx: _claim_report(tx, row))

    async def reports(self, scope: str | None, since: datetime) -> list[Report]:
        """Newest first, at most REPORT_LIST_LIMIT; every scope's when `scope` is None."""
        return await self._run(lambda tx: _reports(tx, scope, since), write=False)

    async def claim_alert(self, alert: str) -> bool:
        """True for the one caller (in any process) that first claims `alert`."""
        now = self.clock()
        return await self._run(lambda tx: _claim_alert(tx, alert, now))

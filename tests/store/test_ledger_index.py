"""A settle or refund reads its own job's ledger rows through an index, on both
backends: a scan of the whole ledger made every settle slower with every job."""

from __future__ import annotations

from bot.quota import Quota
from bot.store.base import SqlStore
from bot.store.queries import CHARGE_OF, SqlTx

from .conftest import ALICE, GUILD, make_request

# How each backend says it reads a whole table (with sequential scans disabled on
# PostgreSQL, whose planner would rightly scan a table this small).
WHOLE_TABLE = {"sqlite": "SCAN l", "postgresql": "Seq Scan on ledger"}


def _plan(tx: SqlTx, job_id: int) -> str:
    if tx.dialect.name == "sqlite":
        rows = tx.fetch(f"EXPLAIN QUERY PLAN {CHARGE_OF}", (job_id,))
        return "\n".join(str(r["detail"]) for r in rows)
    tx.execute("SET LOCAL enable_seqscan = off")
    return "\n".join(str(r["QUERY PLAN"]) for r in tx.fetch(f"EXPLAIN {CHARGE_OF}", (job_id,)))


async def test_a_jobs_ledger_rows_are_read_through_an_index(store: SqlStore, quota: Quota) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(5))
    await quota.settle(job.id, 0.01)
    backend, _where = store.describe()
    plan = await store.run(lambda tx: _plan(tx, job.id), write=False)
    assert WHOLE_TABLE[backend] not in plan, plan
    assert "ledger_job" in plan, plan

"""Durable state: users, jobs and the quota ledger.

`protocol` says what the rest of the bot may rely on (the `Store` and `LedgerTx`
protocols and their records); `codec` turns records into column values and back;
`schema` holds the SQLite tables and migrations, `sqlite_tx` the queries and
`sqlite` the store that runs them on one worker thread; `audit` checks the ledger
against the totals kept beside it.
"""

from .protocol import (
    Clock,
    JobCharge,
    JobNotFound,
    LedgerEntry,
    LedgerKind,
    LedgerTx,
    NewJob,
    Store,
    UsageRow,
    UsageSnapshot,
    UserRow,
    day_key,
    month_key,
    utc_now,
    workspace_key_of,
)
from .schema import MIGRATIONS, SCHEMA_VERSION
from .sqlite import SqliteStore, open_store
from .sqlite_tx import SqliteTx

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Clock",
    "JobCharge",
    "JobNotFound",
    "LedgerEntry",
    "LedgerKind",
    "LedgerTx",
    "NewJob",
    "SqliteStore",
    "SqliteTx",
    "Store",
    "UsageRow",
    "UsageSnapshot",
    "UserRow",
    "day_key",
    "month_key",
    "open_store",
    "utc_now",
    "workspace_key_of",
]

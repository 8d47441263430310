"""Durable state: users, jobs and the quota ledger, in SQLite or PostgreSQL.

`protocol` says what the rest of the bot may rely on (the `Store` and `LedgerTx`
protocols and their records); `codec` turns records into column values and back;
`schema` holds the tables and migrations of both backends and `dialect` where
their SQL differs; `queries` the statements both run, `base` the store methods
both share, `audit` the ledger check. `sqlite` runs them on one SQLite file from
one worker thread (`sqlite_file` makes, checks and refuses the file itself);
`postgres` (with the row locks of `postgres_tx`) on a PostgreSQL server from a
pool. `factory.open_store` opens the one the settings
name, and `transfer` copies a SQLite store into an empty PostgreSQL database
and backs PostgreSQL up.
"""

from .base import SqlStore, StoreHealth
from .factory import open_store
from .protocol import (
    Clock,
    JobCharge,
    JobNotFound,
    LeaseRefused,
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
from .queries import SqlTx
from .schema import MIGRATIONS, SCHEMA_VERSION
from .sqlite import SqliteStore, open_sqlite
from .sqlite_file import DatabaseFileRefused

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Clock",
    "DatabaseFileRefused",
    "JobCharge",
    "JobNotFound",
    "LeaseRefused",
    "LedgerEntry",
    "LedgerKind",
    "LedgerTx",
    "NewJob",
    "SqlStore",
    "SqlTx",
    "SqliteStore",
    "Store",
    "StoreHealth",
    "UsageRow",
    "UsageSnapshot",
    "UserRow",
    "day_key",
    "month_key",
    "open_sqlite",
    "open_store",
    "utc_now",
    "workspace_key_of",
]

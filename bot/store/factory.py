"""Opening the store that the settings (or a path, or a URL) name."""

from __future__ import annotations

from pathlib import Path

from bot.config import DatabaseSettings
from bot.config.database import is_postgres_url

from .base import SqlStore
from .protocol import Clock, utc_now
from .sqlite import open_sqlite


async def open_store(where: str | Path | DatabaseSettings, *, clock: Clock = utc_now) -> SqlStore:
    """Open (creating or migrating as needed) the store `where` names: the [database]
    settings (their `url` when set, else their `path`), a postgresql:// URL, or the
    path of a SQLite file."""
    if isinstance(where, DatabaseSettings):
        if where.url is not None:
            return await _postgres(where.url.get_secret_value(), where.pool_size, clock)
        return await open_sqlite(where.path, clock=clock)
    if is_postgres_url(where):
        return await _postgres(str(where), DatabaseSettings().pool_size, clock)
    return await open_sqlite(where, clock=clock)


async def _postgres(url: str, pool_size: int, clock: Clock) -> SqlStore:
    # Imported here: a bot on SQLite never loads the PostgreSQL driver.
    from .postgres import open_postgres

    return await open_postgres(url, pool_size=pool_size, clock=clock)

"""The one rule of [database] that a field cannot check alone: `path` (a SQLite file)
and `url` (a PostgreSQL database) name two different stores, so setting both is
an error that names both and where each was set. One exception: the Docker
image sets `LTX_BOT_DB` (-> database.path) by default, and a url replaces that
default with a warning instead of an error.

`bot.config.load_settings` applies it to the raw file and environment data,
before validation, because only there is it known where each value came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
IMAGE_DEFAULT_ENV = "LTX_BOT_DB"  # the Dockerfile's ENV, a default rather than a choice


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(POSTGRES_SCHEMES)


def one_database(file: dict[str, Any], env: dict[str, Any], env_origin: dict[str, str],
                 where: Callable[[str], str]) -> str | None:
    """Apply the rule to the file's tables and the environment's overrides (changing them
    when the image default is dropped); the problem as text, or None when there is none.
    `where(dotted_key)` says where a value was set."""
    file_db, env_db = (_section(data) for data in (file, env))
    url = env_db.get("url", file_db.get("url"))
    if url is None:
        return None
    if isinstance(url, str) and not is_postgres_url(url):
        return f"database.url: must start with postgresql:// ({where('database.url')})"
    if env_origin.get("database.path") == IMAGE_DEFAULT_ENV:
        log.warning("database.url is set, so %s=%s is ignored", IMAGE_DEFAULT_ENV, env_db.pop("path"))
        del env_origin["database.path"]
    if "path" in file_db or "path" in env_db:
        return (f"database.path ({where('database.path')}) and database.url "
                f"({where('database.url')}) are both set: a SQLite file or a PostgreSQL "
                "database, not both")
    return None


def _section(data: dict[str, Any]) -> dict[str, Any]:
    section = data.get("database")
    return section if isinstance(section, dict) else {}

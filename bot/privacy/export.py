"""`my-data`: everything the bot stores about one user, as one JSON document."""

from __future__ import annotations

import json
from typing import Any

from bot.config import Settings
from bot.ports import User
from bot.store import SqlStore
from bot.store.privacy import user_data

from .files import history_path, safe_name


async def my_data(store: SqlStore, settings: Settings, user: User, *,
                  local_files: bool) -> dict[str, Any]:
    """The user's rows (user, jobs, ledger, usage totals) and, on a surface of this machine
    (`local_files`: the terminal chat), their input history; JSON columns decoded."""
    data = await store.run(lambda tx: user_data(tx, user.key), write=False)
    for job in data["jobs"]:
        for column in ("input_json", "result_json"):
            job[column] = _decoded(job.get(column))
        for column in ("status_message_json", "result_message_json"):
            # A message reference may carry the platform's interaction token: the bot's
            # credential, not the user's data.
            job[column] = _without_tokens(_decoded(job.get(column)))
    history = history_path(settings.data_dir, user.id) if local_files else None
    if history is not None and history.is_file():
        data["input_history"] = history.read_text(encoding="utf-8", errors="replace")
    data["about"] = {
        "user_key": user.key,
        "kept_elsewhere": "The bot's log file may name you for up to its rotation "
                          "(see docs/PRIVACY.md); forget-me removes those lines too.",
    }
    return data


def my_data_filename(user: User) -> str:
    """`my-data-<id>.json`: one file per user where files land side by side (a terminal)."""
    return f"my-data-{safe_name(user.id)}.json"


def _without_tokens(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_tokens(v) for k, v in value.items() if "token" not in k.lower()}
    return value


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value

"""Records to column values and back: times as fixed-format UTC text, JSON with
datetimes kept, message references, and the job and user rows.

Plain Python on both sides, so every SQL implementation of the store shares it.
Times are written as ISO text everywhere (SQLite keeps the text, PostgreSQL parses
it into timestamptz) and read back from either form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Protocol, get_args

from bot.model import JobRecord, JobState, ParentKind
from bot.ports import MessageRef, Place

from .protocol import UserRow, workspace_key_of


class Row(Protocol):
    """A result row read by column name (sqlite3.Row, or any driver's mapping row)."""

    def __getitem__(self, key: str, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...


# ---------------------------------------------------------------- times and JSON


def encode_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times must be timezone-aware (UTC)")
    # One fixed format so that text comparison in SQL is time comparison.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode_time_opt(value: datetime | None) -> str | None:
    return None if value is None else encode_time(value)


def decode_time(value: str | datetime | None) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)  # PostgreSQL's timestamptz, in the session's zone
    return None if value is None else datetime.fromisoformat(value)


def required_time(value: str | datetime) -> datetime:
    """A NOT NULL time column's value."""
    decoded = decode_time(value)
    assert decoded is not None  # the column is NOT NULL
    return decoded


def _json_default(value: Any) -> Any:
    # MessageRef.extra may hold an interaction expiry; keep it a datetime on the way back.
    if isinstance(value, datetime):
        return {"$dt": encode_time(value)}
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    return obj


def encode_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def decode_json(text: str | None) -> Any:
    return None if text is None else json.loads(text, object_hook=_json_hook)


def encode_ref(ref: MessageRef | None) -> str | None:
    if ref is None:
        return None
    if not isinstance(ref, MessageRef):
        raise ValueError("a message reference must be a MessageRef")
    return encode_json({"platform": ref.platform, "channel": ref.channel, "id": ref.id, "extra": ref.extra})


def decode_ref(text: str | None) -> MessageRef | None:
    data = decode_json(text)
    if data is None:
        return None
    return MessageRef(platform=data["platform"], channel=data["channel"], id=data["id"],
                      extra=data.get("extra") or {})


# ---------------------------------------------------------------- job fields

_DATETIME_FIELDS = frozenset(
    {"created_at", "updated_at", "interaction_expires_at", "finished_at", "started_at"}
)
# `id` is the key and `updated_at` is always the store's clock.
UPDATABLE_FIELDS = frozenset(f.name for f in fields(JobRecord)) - {"id", "updated_at"}


def encode_field(name: str, value: Any) -> list[tuple[str, Any]]:
    """How one JobRecord field is written: a list of (column, value) pairs."""
    if name == "place":
        if not isinstance(value, Place):
            raise ValueError("place must be a Place")
        return [("place_platform", value.platform), ("workspace", value.workspace),
                ("channel", value.channel), ("thread", value.thread),
                ("workspace_key", workspace_key_of(value))]
    if name in ("input", "result"):
        return [(f"{name}_json", None if value is None else encode_json(value))]
    if name in ("status_message", "result_message"):
        return [(f"{name}_json", encode_ref(value))]
    if name == "state":
        return [("state", JobState(value).value)]
    if name == "parent_kind":
        if value is not None and value not in get_args(ParentKind):
            raise ValueError(f"parent_kind must be one of {get_args(ParentKind)}")
        return [("parent_kind", value)]
    if name in _DATETIME_FIELDS:
        if value is not None and not isinstance(value, datetime):
            raise ValueError(f"{name} must be a datetime")
        return [(name, encode_time_opt(value))]
    if name == "owner_roles":
        return [("owner_roles_json", encode_json(list(value)) if value else None)]
    if name in ("unreserved", "owner_admin"):
        return [(name, 1 if value else 0)]  # INTEGER 0/1 on both backends
    if name == "progress" and value is not None:
        return [(name, float(value))]
    return [(name, value)]


# ---------------------------------------------------------------- rows


def job_from_row(row: Row) -> JobRecord:
    created = decode_time(row["created_at"])
    updated = decode_time(row["updated_at"])
    assert created is not None and updated is not None
    return JobRecord(
        id=row["id"],
        owner_platform=row["owner_platform"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"],
        place=Place(platform=row["place_platform"], channel=row["channel"],
                    workspace=row["workspace"], thread=row["thread"]),
        endpoint_id=row["endpoint_id"],
        input=decode_json(row["input_json"]),
        state=JobState(row["state"]),
        estimate_credits=row["estimate_credits"],
        estimate_usd=row["estimate_usd"],
        created_at=created,
        updated_at=updated,
        prompt=row["prompt"],
        settled_credits=row["settled_credits"],
        settled_usd=row["settled_usd"],
        fal_request_id=row["fal_request_id"],
        local_position=row["local_position"],
        queue_position=row["queue_position"],
        progress=row["progress"],
        status_message=decode_ref(row["status_message_json"]),
        result_message=decode_ref(row["result_message_json"]),
        interaction_token=row["interaction_token"],
        interaction_expires_at=decode_time(row["interaction_expires_at"]),
        result_url=row["result_url"],
        result_size=row["result_size"],
        result=decode_json(row["result_json"]),
        error_type=row["error_type"],
        error_message=row["error_message"],
        finished_at=decode_time(row["finished_at"]),
        started_at=decode_time(row["started_at"]),
        parent_id=row["parent_id"],
        parent_kind=row["parent_kind"],
        unreserved=bool(row["unreserved"]),
        owner_roles=tuple(decode_json(row["owner_roles_json"]) or ()),
        owner_admin=bool(row["owner_admin"]),
    )


def user_from_row(row: Row) -> UserRow:
    return UserRow(key=row["key"], name=row["name"], tier=row["tier"],
                   blocked=bool(row["blocked"]), platform=row["platform"],
                   platform_id=row["platform_id"], bonus_credits=row["bonus_credits"],
                   created_at=decode_time(row["created_at"]),
                   updated_at=decode_time(row["updated_at"]))

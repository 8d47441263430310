"""What fal says about a request: its handle, status events, and the parsing of both.

Pure functions over fal's JSON: a status object becomes one `FalEvent`, log lines
become a progress fraction, and a 422 `detail` becomes words a user can act on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import FalError


@dataclass(frozen=True)
class QueueHandle:
    """Where one request lives on fal's queue (enough to follow it after a restart)."""

    endpoint_id: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True)
class LogLine:
    """One line of a request's logs."""

    message: str
    level: str | None
    timestamp: str | None


@dataclass(frozen=True)
class Queued:
    """Waiting in fal's queue; `position` 0 is next."""

    position: int | None


@dataclass(frozen=True)
class Running:
    """Running; `progress` as read from the newest log line that says."""

    logs: list[LogLine]
    progress: float | None  # 0..1


@dataclass(frozen=True)
class Completed:
    """Finished with a result to fetch."""

    inference_time: float | None


@dataclass(frozen=True)
class Failed:
    """Finished without a result; `message` says why, `error_type` is fal's code."""

    error_type: str | None
    message: str
    status: int | None


FalEvent = Queued | Running | Completed | Failed


def is_final(event: FalEvent) -> bool:
    return isinstance(event, Completed | Failed)


# ---------------------------------------------------------------- progress

_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_STEP = re.compile(r"\bstep\s*(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
_FRACTION = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")


def progress_from_message(message: str) -> float | None:
    """A 0..1 fraction from a log line: "45%", "Step 12/40", "step 12 of 40", tqdm's "12/40"."""
    match = _PERCENT.search(message)
    if match:
        return _clamp(float(match.group(1)) / 100.0)
    for pattern in (_STEP, _FRACTION):
        match = pattern.search(message)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            # "2026/11/21" is a date, not progress.
            if total > 0 and done <= total:
                return done / total
    return None


def progress_from_logs(logs: Sequence[LogLine]) -> float | None:
    # The newest line that says anything about progress wins.
    for line in reversed(logs):
        value = progress_from_message(line.message)
        if value is not None:
            return value
    return None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


# ---------------------------------------------------------------- status objects


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _logs_from(data: Mapping[str, Any]) -> list[LogLine]:
    raw = data.get("logs")
    if not isinstance(raw, list):
        return []
    return [
        LogLine(message=item["message"], level=_text_or_none(item.get("level")),
                timestamp=_text_or_none(item.get("timestamp")))
        for item in raw
        if isinstance(item, Mapping) and isinstance(item.get("message"), str)
    ]


def _completed(data: Mapping[str, Any]) -> Completed | Failed:
    error = data.get("error")
    error_type = data.get("error_type")
    if error or error_type:
        return Failed(error_type=_text_or_none(error_type),
                      message=str(error) if error else "the request failed on fal", status=None)
    metrics = data.get("metrics")
    inference = metrics.get("inference_time") if isinstance(metrics, Mapping) else None
    return Completed(inference_time=float(inference) if isinstance(inference, int | float) else None)


def parse_status(data: Mapping[str, Any], previous_progress: float | None = None) -> FalEvent:
    """One status object (from a poll or a stream line) as an event."""
    status = data.get("status")
    if status == "IN_QUEUE":
        position = data.get("queue_position")
        return Queued(position=position if isinstance(position, int) else None)
    if status == "IN_PROGRESS":
        logs = _logs_from(data)
        progress = progress_from_logs(logs)
        return Running(logs=logs, progress=progress if progress is not None else previous_progress)
    if status == "COMPLETED":
        return _completed(data)
    raise FalError(f"fal sent an unknown request status {str(status)[:40]!r}")


# ---------------------------------------------------------------- validation errors


def _humanize(name: str) -> str:
    return name.replace("_", " ").strip()


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    # FastAPI prefixes where the value came from; the user only knows field names.
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problem(item: Mapping[str, Any]) -> str:
    loc = item.get("loc")
    path = _field_path(loc) if isinstance(loc, list | tuple) else ""
    msg = str(item.get("msg") or "is not valid").rstrip(".")
    if not path:
        return msg
    leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
    return f'"{_humanize(leaf)}" ({path}): {msg}'


def validation_message(detail: Any) -> str:
    """Plain-words text for a 422 `detail` (a list of FastAPI errors, or a string)."""
    if isinstance(detail, list):
        problems = [_problem(item) for item in detail if isinstance(item, Mapping)]
        if problems:
            return "fal did not accept the input: " + "; ".join(problems) + "."
    if isinstance(detail, str) and detail.strip():
        return f"fal did not accept the input: {detail.strip()[:300]}"
    return "fal did not accept the input."

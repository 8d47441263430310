"""Pure parsing: progress from log lines, status objects, 422 details, Retry-After."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.errors import FalError
from bot.fal import (
    Completed,
    Failed,
    LogLine,
    Queued,
    Running,
    parse_status,
    progress_from_message,
    validation_message,
)
from bot.fal.retry import retry_after


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("45%", 0.45),
        ("Denoising 45 % done", 0.45),
        ("Step 12/40", 0.3),
        ("step 12 of 40", 0.3),
        ("STEP 40 / 40", 1.0),
        (" 45%|████▌     | 18/40 [00:05<00:06,  3.2it/s]", 0.45),
        ("18/40 [00:05<00:06]", 0.45),
        ("150%", 1.0),
        ("Loading weights", None),
        ("Step 3/0", None),
        ("saved 2026/11/21", None),
    ],
)
def test_progress_from_message(message: str, expected: float | None) -> None:
    got = progress_from_message(message)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_parse_status_shapes() -> None:
    assert parse_status({"status": "IN_QUEUE", "queue_position": 3}) == Queued(3)
    running = parse_status({"status": "IN_PROGRESS", "logs": [
        {"message": "Step 1/4", "level": "INFO", "timestamp": "t1"},
        {"message": "loading", "level": "INFO", "timestamp": "t2"},
        {"bogus": True},
    ]})
    assert running == Running(
        logs=[LogLine("Step 1/4", "INFO", "t1"), LogLine("loading", "INFO", "t2")], progress=0.25
    )
    # Without a progress line, the last known progress carries over.
    assert parse_status({"status": "IN_PROGRESS", "logs": None}, 0.5) == Running([], 0.5)
    assert parse_status({"status": "COMPLETED", "metrics": {"inference_time": 2}}) == Completed(2.0)
    assert parse_status({"status": "COMPLETED", "logs": None}) == Completed(None)
    failed = parse_status({"status": "COMPLETED", "error": "boom", "error_type": "runner_disconnected"})
    assert failed == Failed("runner_disconnected", "boom", None)
    with pytest.raises(FalError):
        parse_status({"status": "EXPLODED"})


def test_validation_message_names_fields_in_plain_words() -> None:
    detail = [
        {"loc": ["body", "num_frames"], "msg": "Input should be less than or equal to 481",
         "type": "less_than_equal"},
        {"loc": ["body", "images", 1, "image_url"], "msg": "Field required", "type": "missing"},
    ]
    text = validation_message(detail)
    assert '"num frames" (num_frames): Input should be less than or equal to 481' in text
    assert '"image url" (images[1].image_url): Field required' in text
    assert validation_message("Prompt is too long") == "fal did not accept the input: Prompt is too long"
    assert validation_message(None) == "fal did not accept the input."


def test_retry_after_seconds_and_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("0")) == 0.0
    assert retry_after(response("2.5")) == 2.5
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 20 < (retry_after(response(later)) or 0) <= 30
    assert retry_after(response("soon")) is None
    assert retry_after(httpx.Response(429)) is None

"""bot.boundary: the one place a failure becomes words for the user."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.boundary import boundary, report_failure
from bot.errors import QuotaExceeded


class Notes:
    """What the user was told (a real object standing in for a port's `tell`)."""

    def __init__(self, *, broken: bool = False) -> None:
        self.told: list[str] = []
        self.broken = broken

    async def tell(self, text: str) -> None:
        if self.broken:
            raise ConnectionError("the platform is gone")
        self.told.append(text)


async def test_a_user_error_is_told_as_is_and_not_logged_as_unexpected(
        caplog: pytest.LogCaptureFixture) -> None:
    notes = Notes()
    async with boundary(notes.tell, "test command"):
        raise QuotaExceeded("No credits left today; they reset at midnight UTC.")
    assert notes.told == ["No credits left today; they reset at midnight UTC."]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_anything_else_is_logged_with_an_id_which_is_all_the_user_sees(
        caplog: pytest.LogCaptureFixture) -> None:
    notes = Notes()
    async with boundary(notes.tell, "test command"):
        raise RuntimeError("secret internals /etc/passwd")
    [text] = notes.told
    assert "error id `" in text and "passwd" not in text and "RuntimeError" not in text
    cid = text.split("`")[1]
    [record] = [r for r in caplog.records if cid in r.getMessage()]
    assert record.levelno == logging.ERROR and "test command" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_a_failed_tell_is_logged_with_its_traceback_and_goes_no_further(
        caplog: pytest.LogCaptureFixture) -> None:
    notes = Notes(broken=True)
    async with boundary(notes.tell, "test command"):
        raise RuntimeError("first failure")
    warning = next(r for r in caplog.records if "could not tell the user" in r.getMessage())
    assert warning.levelno == logging.WARNING and "test command" in warning.getMessage()
    assert warning.exc_info is not None and warning.exc_info[0] is ConnectionError
    # The first failure is still logged, with its own id.
    assert any(r.levelno == logging.ERROR and "first failure" in str(r.exc_info[1])
               for r in caplog.records if r.exc_info)


async def test_cancellation_passes_through() -> None:
    notes = Notes()
    with pytest.raises(asyncio.CancelledError):
        async with boundary(notes.tell, "test command"):
            raise asyncio.CancelledError
    assert notes.told == []


async def test_the_body_runs_and_nothing_is_told_when_it_succeeds() -> None:
    notes = Notes()
    ran = []
    async with boundary(notes.tell, "test command"):
        ran.append(True)
    assert ran == [True] and notes.told == []


async def test_report_failure_is_what_the_boundary_does_with_a_caught_error(
        caplog: pytest.LogCaptureFixture) -> None:
    notes = Notes()
    await report_failure(QuotaExceeded("wait a minute"), notes.tell, "hook")
    await report_failure(KeyError("x"), notes.tell, "hook", logger=logging.getLogger("elsewhere"))
    assert notes.told[0] == "wait a minute" and "error id `" in notes.told[1]
    assert any(r.name == "elsewhere" for r in caplog.records)

"""The error tree.

`UserError` and its subclasses carry text that is shown to the user exactly as
written, so it must be specific and actionable and must never contain secrets,
tracebacks or `str()` of a foreign exception. Everything that is not a
`UserError` is unexpected: it is logged with a correlation id and the user
only sees that id (see `report_unexpected`).
"""

from __future__ import annotations

import logging
import secrets


class UserError(Exception):
    """Bad input or a refusal the user can act on. `str(err)` is the user text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(UserError):
    """The command could not be parsed (unknown flag, bad value, missing prompt)."""


class UnsupportedOption(UserError):
    """A flag the chosen model does not take."""


class MediaError(UserError):
    """An attachment that is the wrong kind, too big, corrupt or unreachable."""


class QuotaExceeded(UserError):
    """A quota limit refused the job; the text says which, what is left, and when it resets.

    `limit` names it ("daily", "monthly", "workspace", "global", "concurrent", "cooldown")
    and `retry_after` says in seconds when trying again can help, for callers that wait
    (a scripted session) instead of telling the user.
    """

    def __init__(self, message: str, *, limit: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


class PermissionDenied(UserError):
    """The user may not do this (admin command, someone else's job, blocked user)."""


class NotFound(UserError):
    """A job or user the command names does not exist (or is not the user's)."""


class FalError(Exception):
    """Something went wrong talking to fal. Never carries the API key."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.retryable = retryable

    @property
    def upstream_fault(self) -> bool:
        """5xx and infrastructure failures are not charged by fal: refund in full."""
        return self.status is not None and self.status >= 500


class FalValidationError(FalError, UserError):
    """fal answered 422: the input was refused. The message names the field."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        FalError.__init__(self, message, status=status, error_type="validation_error")
        self.message = message

    def __str__(self) -> str:
        return self.message


class FalTransportError(FalError):
    """fal could not be reached, or kept answering with retryable errors."""


class FalRequestFailed(FalError):
    """The request ran on fal and ended in an error (`error` / `error_type` in the status)."""


class ResultExpired(FalError):
    """The result is gone upstream (kept 1 hour, 6 minutes when large)."""


def new_correlation_id() -> str:
    """Short enough to read out over chat, long enough to grep logs for."""
    return secrets.token_hex(4)


def report_unexpected(logger: logging.Logger, exc: BaseException, context: str) -> str:
    """Log `exc` with a fresh correlation id and return the text the user sees."""
    cid = new_correlation_id()
    logger.error("unexpected error [%s] during %s", cid, context, exc_info=exc)
    return f"Something went wrong on our side (error id `{cid}`). Please try again; if it keeps happening, give that id to the bot's operator."

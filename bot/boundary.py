"""The one error boundary between a platform event and the user.

Every adapter (and the core's own entry point) runs the work of one event
inside `boundary(tell, context)`: a `UserError` becomes its own text, told to
the user; anything else is logged with a correlation id and the user is told
only that id, never a traceback or `str(exception)`. Code that is handed an
exception after the fact (a platform library's error hook) calls
`report_failure` instead, which is what the boundary does with what it catches.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot import metrics
from bot.errors import UserError, report_unexpected

log = logging.getLogger(__name__)

# How the user is reached: a private or ephemeral note in the place the event came from.
Tell = Callable[[str], Awaitable[None]]


async def report_failure(exc: Exception, tell: Tell, context: str, *,
                         logger: logging.Logger = log) -> None:
    """Tell the user about `exc`: a UserError's text as is; anything else as a logged id."""
    if not isinstance(exc, UserError):
        metrics.adapter_error(context)
    text = str(exc) if isinstance(exc, UserError) else report_unexpected(logger, exc, context)
    try:
        await tell(text)
    except Exception:
        # The user cannot be reached (expired interaction, channel gone, platform down) and
        # there is nobody else to tell. The failure itself is logged above (or was only the
        # user's mistake); re-raising would merely crash the platform's listener for the
        # next event, so this is the end of the event.
        logger.warning("could not tell the user about a failure in %s", context, exc_info=True)


@asynccontextmanager
async def boundary(tell: Tell, context: str, *,
                   logger: logging.Logger = log) -> AsyncIterator[None]:
    """Run the body of one event; no exception leaves it (cancellation still does).

    `context` says what was running ("command video"), for the log line."""
    try:
        yield
    except Exception as exc:  # the boundary: nothing unexpected reaches a platform
        await report_failure(exc, tell, context, logger=logger)

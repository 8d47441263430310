"""The command core's one entry, `Bot.handle`, and its one error boundary."""

from __future__ import annotations

import logging

from bot.boundary import boundary
from bot.commands import account, actions, admin, generate, help, models, privacy
from bot.commands.services import Handler, Services
from bot.config import Settings
from bot.errors import UsageError, report_unexpected
from bot.jobs import JobRunner
from bot.media import Fetcher
from bot.ports import ChatPort, Invocation
from bot.quota import Quota
from bot.store import Store

log = logging.getLogger(__name__)

# Every command by name, from the family modules.
COMMANDS: dict[str, Handler] = {
    **generate.HANDLERS, **account.HANDLERS, **help.HANDLERS, **admin.HANDLERS,
    **actions.HANDLERS, **models.HANDLERS, **privacy.HANDLERS,
}


class Bot:
    """The command core: `handle(invocation, port)` runs one command for any platform.

    It looks the command up in `COMMANDS` and tells the user the handler's answer
    through the port. It never raises: a `UserError` becomes a private note with
    its text; anything else is logged with a correlation id, and the user is told
    only that id. Adapters see it as `bot.ports.Core`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        quota: Quota,
        runner: JobRunner,
        *,
        fetcher: Fetcher | None = None,
    ) -> None:
        # One fetcher (and so one download policy) for commands and the runner.
        self.services = Services(settings, store, quota, runner, fetcher or runner.fetcher)

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        async def tell(text: str) -> None:
            await port.tell(inv.user, inv.place, text)

        async with boundary(tell, f"command {inv.command}", logger=log):
            note = await self._run(inv, port)
            if note:
                await self._tell(inv, port, note)

    async def first_seen(self, event_id: str) -> bool:
        """The store's durable claim on a platform event id (see `bot.ports.Core`)."""
        return await self.services.store.first_seen(event_id)

    async def _run(self, inv: Invocation, port: ChatPort) -> str | None:
        store = self.services.store
        if inv.event_id and not await store.first_seen(inv.event_id):
            # A platform re-sent an event we already took (also across a restart).
            log.info("ignoring repeated event %s", inv.event_id)
            return None
        await store.ensure_user(inv.user)
        inv = actions.on_earlier_result(inv)
        handler = COMMANDS.get(inv.command.lower().lstrip("/"))
        if handler is None:
            raise UsageError(f"I don't know the command {inv.command!r}. Try help.")
        return await handler(self.services, inv, port)

    async def _tell(self, inv: Invocation, port: ChatPort, text: str) -> None:
        try:
            await port.tell(inv.user, inv.place, text)
        except Exception as exc:
            # Logged with its traceback and dropped: there is no other way to reach this user,
            # and a failed note must not fail the command (its job may be running already).
            report_unexpected(log, exc, "telling the user")

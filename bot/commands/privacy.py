"""A user's data: `forget-me` (confirmed by a button or `forget-me confirm`), `my-data`,
and the admin's `admin forget <user>`.

The confirmation card is shown only to the user who asked where the chat can do that
(`PrivateCards`: an ephemeral message); elsewhere it is posted as any card, and only
its asker's press counts.

A pending `forget-me` is kept in the store (`bot.store.forget_requests`) for
`CONFIRM_SECONDS`, not in this process: with several processes on one store (an HTTP
endpoint behind a load balancer, shards) the press may reach another process than the
ask did. A stored row rather than a signed token on the button because the row is
consumed by the press (a second press, or a press in two processes at once, forgets
once), a new ask simply renews it, the buttons stay the plain `forget` action every
surface already renders (no secret to keep, rotate or leak), and forgetting the user
drops the row with the rest of what names them. The button forgets the presser only
if the presser asked: another user's press finds no request of theirs.
Typing `forget-me confirm` needs no pending request: the words are the confirmation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.commands.services import Handler, Services
from bot.errors import UsageError
from bot.ports import Action, ChatPort, Invocation, PrivateCards, PrivateFiles, StatusCard, User
from bot.privacy.export import my_data, my_data_filename
from bot.privacy.fal_delete import delete_at_fal
from bot.privacy.forget import forget
from bot.store import SqlStore
from bot.store.forget_requests import ForgetRequests

if TYPE_CHECKING:
    from bot.commands.admin import AdminCall

CONFIRM_SECONDS = 600.0
CONFIRM_WORD = "confirm"


def _what_goes(prefix: str) -> list[str]:
    return [
        "This cancels your unfinished jobs and deletes what the bot stored about you: your "
        "prompts, inputs and results, your name, the bot's posts of your videos (where it "
        "can), saved files and log lines. Only the amounts you spent stay, under an "
        "anonymous key, so the bot's accounts still add up. It cannot be undone.",
        f"Press Forget me, or type {prefix}forget-me {CONFIRM_WORD}, within 10 minutes.",
    ]


async def forget_me(svc: Services, inv: Invocation, port: ChatPort) -> str | None:
    words = (inv.text or "").strip().lower().split()
    if words == [CONFIRM_WORD]:
        return await _forget(svc, inv.user, inv.user)
    if words:
        raise UsageError(f"Usage: forget-me, then forget-me {CONFIRM_WORD}.")
    await _requests(svc).ask(inv.user.key, CONFIRM_SECONDS)
    card = StatusCard(title="Forget me?", lines=_what_goes(port.traits.command_prefix),
                      actions=[Action("forget", 0, "Forget me")], tone="warning", final=True)
    if isinstance(port, PrivateCards):
        await port.post_private(inv.user, inv.place, card)  # only the asker sees the button
    else:
        await port.post(inv.place, card)
    return None


async def press_forget(svc: Services, inv: Invocation) -> str:
    """The Forget me button: forgets the presser, if they asked within CONFIRM_SECONDS
    (in any process on this store); the request is used up by the press."""
    if not await _requests(svc).confirm(inv.user.key):
        raise UsageError("This button confirms a forget-me you asked for in the last 10 "
                         "minutes; type forget-me to ask.")
    return await _forget(svc, inv.user, inv.user)


async def admin_forget(call: AdminCall) -> str:
    """`admin forget <user>`: the same as their own forget-me, at once (the admin typed it)."""
    who_key = call.user_key("forget <user>")
    platform, _, user_id = who_key.partition(":")
    return await _forget(call.svc, User(platform=platform, id=user_id, name=""), call.inv.user)


async def _forget(svc: Services, who: User, by: User) -> str:
    result = await forget(_sql(svc), svc.runner, svc.settings, who, by)
    return result.text()


async def show_my_data(svc: Services, inv: Invocation, port: ChatPort) -> str | None:
    data: dict[str, Any] = await my_data(_sql(svc), svc.settings, inv.user,
                                         local_files=port.traits.local_files)
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if not isinstance(port, PrivateFiles):
        raise UsageError("This chat cannot send you a private file; ask the bot's operator.")
    await port.send_private_file(inv.user, inv.place, my_data_filename(inv.user),
                                 body.encode(), "Everything this bot stores about you.")
    return None


async def delete_at_fal_too(svc: Services, job_id: int) -> str:
    """After the Delete button removed the post: fal's copy too, or how long fal keeps it."""
    job = await svc.job(job_id)
    done = await delete_at_fal(svc.fetcher.http, svc.settings, svc.runner.fal.rest_url,
                               job.fal_request_id)
    return f"Deleted the video of job #{job_id}. {done.sentence()}"


def _requests(svc: Services) -> ForgetRequests:
    store = _sql(svc)
    return ForgetRequests(store, store.clock)


def _sql(svc: Services) -> SqlStore:
    # Forgetting and exporting rewrite tables and files the Store protocol does not name.
    store = svc.store
    assert isinstance(store, SqlStore)
    return store


HANDLERS: dict[str, Handler] = {"forget-me": forget_me, "my-data": show_my_data}

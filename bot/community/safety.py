"""The server's safety rules applied to a command: where it may start, the blocklist,
fal's safety checker, and what happens to a result fal flags.

`admit` runs with the other cheap refusals, before anything is downloaded: a
refused prompt costs nothing and is counted for the moderation log, and the
reply never echoes the list. `apply_checker` sets `enable_safety_checker` on every
job whose endpoint has that field (the server's `safety_checker`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.community import moderation, modlog, where
from bot.community.blocklist import Blocklist
from bot.community.settings import ServerSettings, scope_of
from bot.config.safety import FlaggedResults, SafetySettings
from bot.errors import PermissionDenied
from bot.model import GenerationRequest
from bot.ports import Invocation, Place, PlatformTraits
from bot.store.community import Community

log = logging.getLogger(__name__)

NOT_ALLOWED = "That prompt is not allowed here."
BLOCKLIST_EVENT = "blocklist"
CHECKER_FIELD = "enable_safety_checker"
# Where an endpoint's result says fal flagged it, as (endpoint key -> field of the result).
# No LTX output reports such a flag today, so this is empty: an endpoint that gains one
# gets a line here (or its catalog entry names it) and `flag_treatment` does the rest.
RESULT_FLAG_FIELDS: dict[str, str] = {}


class PromptRefused(PermissionDenied):
    """The blocklist refused what the user wrote."""


class PlaceRefused(PermissionDenied):
    """Jobs may not start here; the text points to where they may."""


def server_settings(svc: Any) -> ServerSettings:
    """The settings in force, over the store of `svc` (a `bot.commands.services.Services`)."""
    return ServerSettings(svc.settings, Community(svc.store, svc.quota.clock))


async def admit(svc: Any, inv: Invocation, traits: PlatformTraits, texts: Sequence[str]) -> SafetySettings:
    """Refuse a job here (a `PlaceRefused`) or a prompt (a `PromptRefused`, counted); else
    the settings in force, for the rest of the command."""
    await moderation.refuse_blocked(svc, inv, traits.workspace_word)
    safety = await server_settings(svc).safety(inv.place)
    why = where.refusal(safety, inv.place, traits)
    if why is not None:
        raise PlaceRefused(why)
    if Blocklist(safety.blocklist, safety.blocklist_patterns).blocks(*texts):
        await Community(svc.store, svc.quota.clock).count_event(
            scope_of(inv.place), inv.user.key, BLOCKLIST_EVENT, inv.place.channel)
        # Who and where go to the log, never the prompt or which entry matched.
        log.info("blocklist refused a prompt of %s in %s", inv.user.key, scope_of(inv.place))
        # Posted beside the refusal, not before it: the user's answer never waits on the log.
        svc.runner.rt.spawn_background(modlog.refused(svc, safety, inv, list(texts)))
        raise PromptRefused(NOT_ALLOWED)
    return safety


def user_texts(prompt: str, options: Mapping[str, Any]) -> list[str]:
    """What the user wrote that the blocklist reads: the prompt and the negative prompt
    (never defaults the bot or a model adds later)."""
    negative = options.get("negative")
    return [prompt, *([negative] if isinstance(negative, str) else [])]


def has_checker(request: GenerationRequest) -> bool:
    return CHECKER_FIELD in request.endpoint.input_model.model_fields


async def apply_checker(svc: Any, place: Place, request: GenerationRequest) -> SafetySettings:
    """`enable_safety_checker` as this server wants it, on every endpoint that has it;
    returns the settings in force (the job's start is then logged by them)."""
    safety = await server_settings(svc).safety(place)
    if has_checker(request):
        request.input[CHECKER_FIELD] = safety.safety_checker
    return safety


def flag_treatment(endpoint_key: str, result: Mapping[str, Any],
                   safety: SafetySettings) -> FlaggedResults | None:
    """What to do with a finished result: None when fal did not flag it, else the
    server's `flagged_results` ("withhold" or "spoiler")."""
    field = RESULT_FLAG_FIELDS.get(endpoint_key)
    if field is None or not _flagged(result.get(field)):
        return None
    return safety.flagged_results


def _flagged(value: Any) -> bool:
    # fal's image models report a list of booleans (one per output); a single flag counts too.
    if isinstance(value, list):
        return any(bool(v) for v in value)
    return bool(value)

"""Where a server lets jobs start: its channels, age-restricted channels only, direct
messages. A pure check on the settings in force and the place; the answer points to
where jobs may start instead."""

from __future__ import annotations

from bot.community.settings import channel_link
from bot.config.safety import SafetySettings
from bot.ports import Place, PlatformTraits


def refusal(safety: SafetySettings, place: Place, traits: PlatformTraits) -> str | None:
    """Why no job may start here, with a pointer to where one may; None when it may."""
    word = traits.workspace_word
    if place.direct:
        if safety.allow_dms:
            return None
        return f"Jobs can't be started in direct messages here. Start one in a channel of a {word} I'm in."
    allowed = safety.allowed_channels
    if allowed and place.channel not in allowed and (place.parent or "") not in allowed:
        channels = ", ".join(channel_link(c, traits) for c in allowed)
        return f"In this {word} jobs start only in {channels}. Please start yours there."
    if safety.age_restricted_only and place.age_restricted is not True:
        where = f" ({', '.join(channel_link(c, traits) for c in allowed)})" if allowed else ""
        return (f"In this {word} jobs start only in age-restricted channels{where}. "
                "Please start yours in one of those.")
    return None

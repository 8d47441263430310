"""The `models` command: every model, what it does, a price example, its license tag,
the roles it is the default for, and marks for deprecated models and those without a
safety checker. Help shows the same list (one source for every surface)."""

from __future__ import annotations

from bot import catalog
from bot.catalog import LICENSE_WORDS, Endpoint, Price
from bot.commands.services import Handler, Services
from bot.config import Settings
from bot.markup import Style
from bot.ports import ChatPort, Invocation

ROLES = ("text", "image", "keyframes", "extend", "audio", "retake", "restyle")
# The example each price is shown for: fal's own worked example for megapixel prices.
EXAMPLE_SIZE = (1280, 720, 121)


async def show_models(svc: Services, inv: Invocation, port: ChatPort) -> str:
    return models_text(Style(port.traits.markup), svc.settings)


HANDLERS: dict[str, Handler] = {"models": show_models}


def default_roles(endpoint: Endpoint, settings: Settings) -> list[str]:
    """The `[models]` roles this endpoint is the default for."""
    return [role for role in ROLES if catalog.by_name(getattr(settings.models, role)) is endpoint]


def price_example(endpoint: Endpoint, price: Price) -> str:
    """`$0.2016 for 121 frames at 1280x720`, `$0.48 for 6 s at 1080p`, `$0.02 a video`."""
    if price.usd_per_megapixel is not None:
        width, height, frames = EXAMPLE_SIZE
        return f"${price.usd(width, height, frames):.4f} for {frames} frames at {width}x{height}"
    if price.per_second:
        rule = endpoint.duration
        seconds = rule.default if rule is not None else (
            endpoint.audio_seconds[1] / 2 if endpoint.audio_seconds else 5.0)
        tier = "1080p" if price.usd_per_second_by_resolution else None
        usd = price.usd(0, 0, 0, seconds=seconds, resolution=tier)
        return f"${usd:.2f} for {seconds:g} s" + (f" at {tier}" if tier else "")
    return f"${price.usd_per_video or 0:.2f} a video"


def model_line(endpoint: Endpoint, settings: Settings, style: Style) -> str:
    price = catalog.price_for(endpoint, settings.prices)
    marks = [LICENSE_WORDS[endpoint.license]]
    roles = default_roles(endpoint, settings)
    if roles:
        marks.append(f"default for {', '.join(roles)}")
    if endpoint.deprecated:
        marks.append("deprecated on fal")
    if not endpoint.safety_checker:
        marks.append("no safety checker")
    if endpoint.license == "research" and not settings.models.allow_research_only:
        marks.append("turned off here")
    assumed = " (assumed)" if price.assumed else ""
    what = endpoint.summary or endpoint.title
    rate = price.describe().removesuffix(" (assumed)")
    example = price_example(endpoint, price)
    # A flat price per video is its own example: "$0.02 a video, e.g. $0.02 a video" says it twice.
    shown = f"{rate}{assumed}" if example == rate else f"{rate}{assumed}, e.g. {example}"
    return f"{style.code(endpoint.key)}: {what}. {shown}. {'; '.join(marks)}."


def models_text(style: Style, settings: Settings) -> str:
    lines = [style.bold("Models"), f"Pick one with {style.code('--model KEY')} (or an alias, or "
             "the fal id); without it, each kind of request goes to its default."]
    lines += [model_line(e, settings, style) for e in catalog.ENDPOINTS]
    return "\n".join(lines)

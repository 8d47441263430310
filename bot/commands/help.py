"""The help text: how to type commands here, and the models, in this surface's markup."""

from __future__ import annotations

from bot import catalog, grammar
from bot.commands.services import Handler, Services
from bot.markup import Style
from bot.ports import ChatPort, Invocation


async def show_help(svc: Services, inv: Invocation, port: ChatPort) -> str:
    traits = port.traits
    return grammar.usage(traits.command_prefix, traits.markup) + "\n\n" + models_text(Style(traits.markup))


HANDLERS: dict[str, Handler] = {"help": show_help, "ltx-help": show_help}


def models_text(style: Style) -> str:
    lines = [style.bold("Models")]
    for e in catalog.ENDPOINTS:
        if e.price.usd_per_megapixel is not None:
            price = f"${e.price.usd_per_megapixel} per megapixel of video"
        else:
            price = f"${e.price.usd_per_video:.2f} a video"
        note = " (deprecated upstream)" if e.deprecated else ""
        lines.append(f"{style.code(e.key)}: {e.title}, takes {e.media.describe()}, {price}{note}")
    return "\n".join(lines)

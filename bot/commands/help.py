"""The help text: how to type commands here, and the models, in this surface's markup.

One source for every surface: the usage, the commands a surface adds to the core's
(`PlatformTraits.own_commands`), the admin commands for admins, and the models, each
written in the surface's markup (plain text, Markdown or mrkdwn).
"""

from __future__ import annotations

from bot import catalog, grammar
from bot.commands import admin_moderation, admin_settings
from bot.commands.admin import SUBCOMMAND_USAGE
from bot.commands.services import Handler, Services
from bot.markup import Style
from bot.ports import ChatPort, Invocation, PlatformTraits


async def show_help(svc: Services, inv: Invocation, port: ChatPort) -> str:
    traits = port.traits
    style = Style(traits.markup)
    parts = [grammar.usage(traits.command_prefix, traits.markup, local_files=traits.local_files)]
    own = own_commands_text(traits, style)
    if own:
        parts.append(own)
    if inv.user.is_admin:
        parts.append(admin_text(traits.command_prefix, style))
    elif inv.user.is_workspace_admin:
        parts.append(admin_text(traits.command_prefix, style,
                                (*admin_settings.USAGE, *admin_moderation.WORKSPACE_USAGE)))
    parts.append(models_text(style))
    return "\n\n".join(parts)


HANDLERS: dict[str, Handler] = {"help": show_help, "ltx-help": show_help}


def own_commands_text(traits: PlatformTraits, style: Style) -> str:
    """The commands this surface reads beyond the core's; empty when it adds none."""
    if not traits.own_commands:
        return ""
    lines = [style.bold("Here you can also type")]
    lines += [f"{style.code(typed)}: {what}" for typed, what in traits.own_commands]
    return "\n".join(lines)


def admin_text(command_prefix: str, style: Style, usages: tuple[str, ...] = SUBCOMMAND_USAGE) -> str:
    """The admin commands, shown only to admins: the bot's admins see every one, a
    workspace's admins those they may use (`usages`)."""
    lines = [style.bold("Admin commands") + " (you are an admin here)"]
    lines += [style.code(f"{command_prefix}admin {usage}") for usage in usages]
    return "\n".join(lines)


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

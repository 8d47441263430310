"""The help text: how to type commands here, and the models, in this surface's markup.

One source for every surface: the usage, the commands a surface adds to the core's
(`PlatformTraits.own_commands`), the admin commands for admins, and the models, each
written in the surface's markup (plain text, Markdown or mrkdwn).
"""

from __future__ import annotations

from bot import grammar
from bot.commands import admin_moderation, admin_settings
from bot.commands.admin import SUBCOMMAND_USAGE
from bot.commands.models import models_text
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
    parts.append(models_text(style, svc.settings))
    policy = policy_text(svc, style)
    if policy:
        parts.append(policy)
    return "\n\n".join(parts)


def policy_text(svc: Services, style: Style) -> str:
    """Your data (forget-me, my-data) and the operator's privacy and terms links, when set."""
    p = svc.settings.privacy
    lines = [style.bold("Your data") + ": my-data sends you what the bot stores about you; "
             "forget-me deletes it."]
    lines += [f"{what}: {url}" for what, url in (("Privacy policy", p.privacy_url),
                                                 ("Terms of service", p.terms_url)) if url]
    return "\n".join(lines)


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

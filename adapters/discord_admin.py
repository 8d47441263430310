"""/ltx-admin: grant, tier, block, unblock, usage and forget, for the admins the config
names; settings, audit, pause, resume, reports and unblock-here also for the server's own
admins (Manage Server), on their server."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from adapters.discord_adapter import DiscordAdapter
from adapters.discord_refs import PLATFORM
from adapters.discord_translate import admin_refusal
from bot.commands.admin_settings import WORKSPACE_SUBCOMMANDS
from bot.community.settings import SETTINGS


def register(tree: app_commands.CommandTree[Any], adapter: DiscordAdapter) -> None:
    admin = app_commands.Group(
        name="ltx-admin", description="Administer the LTX video bot",
        default_permissions=discord.Permissions(manage_guild=True), guild_only=True)

    async def grant(interaction: discord.Interaction[Any], user: discord.User,
                    credits: int) -> None:
        await run_admin(adapter, interaction, "grant",
                        {"user": f"{PLATFORM}:{user.id}", "credits": credits})

    # The option's range is the operator's [quota] max_grant_credits, so Discord refuses a
    # larger number before it is sent; set here because annotations cannot name a setting.
    limit = adapter.settings.quota.max_grant_credits
    grant.__annotations__["credits"] = Range[int, -limit, limit]
    admin.command(name="grant", description="Give a user extra credits")(grant)

    @admin.command(name="tier", description="Put a user on a quota tier (none to clear)")
    async def tier(interaction: discord.Interaction[Any], user: discord.User, name: str) -> None:
        await run_admin(adapter, interaction, "tier", {"user": f"{PLATFORM}:{user.id}", "tier": name})

    @admin.command(name="block", description="Stop a user from making videos")
    async def block(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await run_admin(adapter, interaction, "block", {"user": f"{PLATFORM}:{user.id}"})

    @admin.command(name="unblock", description="Let a blocked user make videos again")
    async def unblock(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await run_admin(adapter, interaction, "unblock", {"user": f"{PLATFORM}:{user.id}"})

    @admin.command(name="usage", description="Spending per user or per server")
    @app_commands.choices(scope=[Choice(name="users", value="users"),
                                 Choice(name="servers", value="workspaces")])
    async def usage(interaction: discord.Interaction[Any], scope: str = "users",
                    days: Range[int, 1, 366] = 30) -> None:
        await run_admin(adapter, interaction, "usage", {"scope": scope, "days": days})

    @admin.command(name="pause", description="Pause video generation (this server, or everywhere)")
    @app_commands.describe(reason="Shown to users whose commands are refused",
                           here="The bot's admins: this server only (a server's admins: always)")
    async def pause(interaction: discord.Interaction[Any], reason: str = "",
                    here: bool = False) -> None:
        await run_admin(adapter, interaction, "pause", {"reason": reason[:200], "here": here})

    @admin.command(name="resume", description="Resume video generation (also after fal's account)")
    @app_commands.describe(here="The bot's admins: this server's pause only")
    async def resume(interaction: discord.Interaction[Any], here: bool = False) -> None:
        await run_admin(adapter, interaction, "resume", {"here": here})

    @admin.command(name="reports", description="Videos members reported, newest first")
    async def reports(interaction: discord.Interaction[Any], days: Range[int, 1, 3660] = 7) -> None:
        await run_admin(adapter, interaction, "reports", {"days": days})

    @admin.command(name="unblock-here", description="Lift a block set from the moderation log")
    async def unblock_here(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await run_admin(adapter, interaction, "unblock-here", {"user": f"{PLATFORM}:{user.id}"})
    @admin.command(name="settings", description="Show or change this server's settings")
    @app_commands.describe(name="The setting (for set and reset)",
                           value="The new value; lists comma-separated, none for an empty list")
    @app_commands.choices(action=[Choice(name=a, value=a) for a in ("show", "set", "reset")],
                          name=[Choice(name=n, value=n) for n in SETTINGS])
    async def settings(interaction: discord.Interaction[Any], action: str = "show",
                       name: str | None = None, value: str | None = None) -> None:
        options = {"action": action, **({"name": name} if name else {}),
                   **({"value": value} if value is not None else {})}
        await run_admin(adapter, interaction, "settings", options)

    @admin.command(name="audit", description="What admins did, newest first")
    async def audit(interaction: discord.Interaction[Any], days: Range[int, 1, 3660] = 7) -> None:
        await run_admin(adapter, interaction, "audit", {"days": days})

    @admin.command(name="forget", description="Delete what the bot stores about a user")
    async def forget(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await run_admin(adapter, interaction, "forget", {"user": f"{PLATFORM}:{user.id}"})

    tree.add_command(admin)


async def run_admin(adapter: DiscordAdapter, interaction: discord.Interaction[Any], sub: str,
                    options: dict[str, Any]) -> None:
    who = await adapter.gate(interaction)
    if who is None:
        return
    if not (who[0].is_admin or (who[0].is_workspace_admin and sub in WORKSPACE_SUBCOMMANDS)):
        # default_permissions only hides the command; server admins can re-grant it to anyone.
        await interaction.response.send_message(admin_refusal(adapter.settings), ephemeral=True)
        return
    await adapter.invoke(interaction, "admin", options={"sub": sub, **options}, mode="ephemeral",
                         who=who)

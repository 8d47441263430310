"""The user's own account: /quota, /jobs, /cancel, /ltx-help, /my-data and /forget-me,
answered privately."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Range

from adapters.discord_adapter import DiscordAdapter


def register(tree: app_commands.CommandTree[Any], adapter: DiscordAdapter) -> None:
    @app_commands.command(name="quota", description="Your credits left and when they reset")
    async def quota(interaction: discord.Interaction[Any]) -> None:
        await adapter.invoke(interaction, "quota", mode="ephemeral")

    @app_commands.command(name="jobs", description="Your recent jobs")
    async def jobs(interaction: discord.Interaction[Any]) -> None:
        await adapter.invoke(interaction, "jobs", mode="ephemeral")

    @app_commands.command(name="cancel", description="Cancel one of your jobs")
    @app_commands.describe(job="Job number (see /jobs)")
    async def cancel(interaction: discord.Interaction[Any], job: Range[int, 1, 2**53]) -> None:
        await adapter.invoke(interaction, "cancel", text=str(job), options={"job_id": job},
                             mode="ephemeral")

    @app_commands.command(name="ltx-help", description="How to use the LTX video bot")
    async def ltx_help(interaction: discord.Interaction[Any]) -> None:
        await adapter.invoke(interaction, "help", mode="ephemeral")

    @app_commands.command(name="my-data", description="Get a file of everything the bot stores about you")
    async def my_data(interaction: discord.Interaction[Any]) -> None:
        await adapter.invoke(interaction, "my-data", mode="ephemeral")

    @app_commands.command(name="forget-me", description="Delete what the bot stores about you")
    @app_commands.describe(confirm="Type confirm to skip the button")
    async def forget_me(interaction: discord.Interaction[Any], confirm: str = "") -> None:
        await adapter.invoke(interaction, "forget-me", text=confirm, mode="ephemeral")

    commands: tuple[Any, ...] = (quota, jobs, cancel, ltx_help, my_data, forget_me)
    for command in commands:
        tree.add_command(command)

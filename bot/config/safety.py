"""[safety]: the defaults of every server's own safety settings.

A server's admins change their server's copy with `admin settings set` (stored per
workspace, see `bot.community.settings`); these are what a server has until then.
The platform sections' allow-lists ([discord] allowed_guilds/channels/roles and
allow_dms, [slack] allowed_workspaces/channels) stay the operator's hard limits: a
server's settings only narrow them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FlaggedResults = Literal["withhold", "spoiler"]


class SafetySettings(BaseModel):
    """[safety]: what may be asked for and where, unless a server set its own."""

    # As every section (bot.config.sections.Section, which imports this module).
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    blocklist: list[str] = Field(
        default_factory=list,
        description="Words or phrases refused in prompts and negative prompts (whole words, "
        "any case, accents, full-width letters and separators such as f.o.o folded).")
    blocklist_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions refused in prompts, matched against the folded text.")
    safety_checker: bool = Field(
        True, description="Send enable_safety_checker to every endpoint that has it.")
    flagged_results: FlaggedResults = Field(
        "withhold", description="A result fal flags: withhold it, or post it as a spoiler.")
    allowed_channels: list[str] = Field(
        default_factory=list, description="Channel ids where jobs may start; empty = anywhere.")
    age_restricted_only: bool = Field(
        False, description="Discord: start jobs only in channels marked age-restricted (NSFW).")
    allow_dms: bool = Field(
        True, description="Start jobs in direct messages (on Discord [discord] allow_dms too).")
    mod_log_channel: str = Field("", description="Channel id for the moderation log; empty = none.")

    @field_validator("blocklist_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        # The same check as `admin settings set`: a bad pattern is named with its error.
        from bot.community.blocklist import check_patterns

        check_patterns(patterns)
        return patterns

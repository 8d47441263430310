"""The settings model: one pydantic section per TOML table, and `Settings` over them all.

Every section has `extra="forbid"`, so an unknown key or a wrong type is an error
that names the key. Secrets are `SecretStr`: they print as `**********` everywhere.
Reading a file and the environment into these is `loading`'s work.
"""


from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config.privacy import PrivacySettings
from bot.config.safety import SafetySettings

DEFAULT_CONFIG_PATHS = ("config.toml", "/etc/ltx-bot/config.toml")
DEFAULT_FAL_QUEUE_URL = "https://queue.fal.run"
DEFAULT_FAL_REST_URL = "https://rest.fal.ai"
MiB = 1024 * 1024


class Section(BaseModel):
    """A settings section: unknown keys are errors, and assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(Section):
    """[database]: users, jobs and the ledger in a SQLite file or PostgreSQL (`url`), not both."""

    path: str = Field("data/ltx-bot.sqlite3", description="SQLite file; created on first start.")
    url: SecretStr | None = Field(None, description="postgresql://user:password@host:5432/db; DATABASE_URL.")
    pool_size: int = Field(4, ge=1, le=100, description="PostgreSQL connections per bot process.")


class TierSettings(Section):
    """A tier overrides the per-user limits for the users and roles it names."""

    daily_credits: int | None = Field(None, ge=0, description="Replaces quota.daily_credits.")
    monthly_credits: int | None = Field(None, ge=0, description="Replaces quota.monthly_credits.")
    max_concurrent_jobs: int | None = Field(None, ge=1, description="Replaces quota.max_concurrent_jobs.")
    cooldown_seconds: float | None = Field(None, ge=0, description="Replaces quota.cooldown_seconds.")
    roles: list[str] = Field(default_factory=list, description="Platform role names or ids.")
    users: list[str] = Field(default_factory=list, description='"platform:user_id" entries.')
    priority: int = Field(0, description="When a user matches several tiers the highest wins.")


class QuotaSettings(Section):
    """[quota]: what each user, workspace and the whole bot may spend, in credits."""

    credits_per_usd: float = Field(100.0, gt=0, description="1 credit = 1 cent by default.")
    daily_credits: int = Field(200, ge=0, description="Per user, resets 00:00 UTC.")
    monthly_credits: int = Field(2000, ge=0, description="Per user, resets on the 1st (UTC).")
    max_concurrent_jobs: int = Field(2, ge=1, description="Unfinished jobs per user.")
    cooldown_seconds: float = Field(10.0, ge=0, description="Between two jobs of one user.")
    workspace_monthly_credits: int = Field(0, ge=0, description="Per guild/workspace; 0 = no limit.")
    global_daily_credits: int = Field(0, ge=0, description="Whole bot per day; 0 = no limit.")
    max_grant_credits: int = Field(
        1_000_000, ge=1, le=1_000_000_000_000,
        description="Most credits one admin grant may give (or take away).",
    )
    tiers: dict[str, TierSettings] = Field(
        default_factory=dict, description="Named tiers, [quota.tiers.NAME]; see TierSettings."
    )


class BackendSettings(Section):
    """[backend]: fal (or the built-in simulator) and how the bot talks to it."""

    kind: Literal["auto", "fal", "sim"] = Field(
        "auto",
        description="auto = fal when a key is set, else the server at a loopback "
        "fal_queue_url (e.g. `ltx-bot sim`; no key needed), else the built-in simulator.",
    )
    fal_key: SecretStr | None = Field(None, description="Prefer the FAL_KEY environment variable.")
    fal_queue_url: str = Field(
        DEFAULT_FAL_QUEUE_URL,
        description="fal queue API base URL; a loopback URL needs no key, and results on its "
        "host are fetched though it is loopback.",
    )
    fal_rest_url: str = Field(DEFAULT_FAL_REST_URL, description="fal storage (uploads) base URL.")
    max_concurrent: int = Field(2, ge=1, description="Jobs at fal at once (local admission).")
    priority: Literal["normal", "low"] = Field("normal", description="fal queue priority.")
    request_timeout_seconds: float = Field(30.0, gt=0, description="Per HTTP call to fal.")
    max_retry_seconds: float = Field(60.0, gt=0, description="Total retry budget per call.")
    max_retries: int = Field(6, ge=0, description="Retries per call (408/409/429/5xx, network).")
    data_uri_max_bytes: int = Field(
        0, ge=0, description="Inputs up to this size go inline as data: URIs; 0 = always upload."
    )
    webhook_url: str | None = Field(
        None,
        description="Also have fal POST each result to this URL (for your own audit or billing "
        "hooks). The bot itself follows fal's status stream and never needs it.",
    )
    sim_host: str = Field("127.0.0.1", description="Built-in simulator: listen address.")
    sim_port: int = Field(0, ge=0, le=65535, description="0 = any free port.")
    sim_queue_seconds: float = Field(1.0, ge=0, description="Simulated time in fal's queue.")
    sim_run_seconds: float = Field(4.0, ge=0, description="Simulated generation time.")
    sim_concurrency: int = Field(2, ge=1, description="Simulated jobs running at once.")

    @property
    def has_key(self) -> bool:
        return self.fal_key is not None and bool(self.fal_key.get_secret_value())

    @property
    def local_server(self) -> bool:
        """fal_queue_url names a server on this machine (a standalone `ltx-bot sim`, say):
        one the operator runs, which needs no fal key."""
        host = (urlsplit(self.fal_queue_url).hostname or "").lower().rstrip(".")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def uses_builtin_simulator(self) -> bool:
        """Whether the bot starts its own simulator: `kind = "sim"`, or `auto` with neither
        a fal key nor a local server to talk to."""
        if self.kind != "auto":
            return self.kind == "sim"
        return not self.has_key and not self.local_server


class PriceSettings(Section):
    """Operator override of a catalog entry's price (USD)."""

    usd_per_video: float | None = Field(None, ge=0, description="A flat price per video.")
    usd_per_megapixel: float | None = Field(
        None, ge=0, description="Per megapixel of width x height x frames, rounded up."
    )
    usd_per_second: float | None = Field(
        None, ge=0, description="Per second of video (the requested duration)."
    )
    usd_per_second_by_resolution: dict[str, float] | None = Field(
        None, description='Per second by output resolution, e.g. {"1080p" = 0.08, "1440p" = 0.16}.'
    )

    @field_validator("usd_per_second_by_resolution")
    @classmethod
    def _rates_not_negative(cls, rates: dict[str, float] | None) -> dict[str, float] | None:
        if rates is not None and (not rates or any(v < 0 for v in rates.values())):
            raise ValueError("give one rate of 0 or more per resolution, e.g. {\"1080p\" = 0.08}")
        return rates


class ModelSettings(Section):
    """Which catalog entry each kind of request goes to unless the user names a model."""

    text: str = Field("ltx-2.3-22b/text-to-video", description="Model for a prompt alone.")
    image: str = Field("ltx-2", description="Model for one image (two on LTX-2: start and end).")
    keyframes: str = Field("ltx-13b", description="Model for keyframes and video conditioning.")
    extend: str = Field("ltx-2.3/extend-video", description="Model for extending a video "
                        "(the Extend button too).")
    audio: str = Field("ltx-2.3/audio-to-video",
                       description="Model for an audio file (with an optional first-frame image).")
    retake: str = Field("ltx-2.3/retake-video", description="Model for retake (redo a section of a clip).")
    restyle: str = Field("ltx-2-19b/video-to-video", description="Model for restyle (a clip, a new look).")
    allow_research_only: bool = Field(
        True, description="Whether models fal tags research only may run (only when named "
        "with --model: they are never a default)."
    )

    @field_validator("text", "image", "keyframes", "extend", "audio", "retake", "restyle")
    @classmethod
    def _a_model_for_its_role(cls, name: str, info: ValidationInfo) -> str:
        """A typo here would only surface when a user hits it; refuse it at load instead."""
        from bot import catalog

        try:
            endpoint = catalog.by_name(name)
        except catalog.UnknownModel:
            known = ", ".join(e.key for e in catalog.ENDPOINTS)
            raise ValueError(f"no model called {name!r} (models: {known})") from None
        images, videos, audios = _ROLE_INPUTS[str(info.field_name)]
        if not endpoint.media.accepts(images, videos, audios):
            raise ValueError(
                f"{endpoint.key} takes {endpoint.media.describe()}, so it cannot be the "
                f"{info.field_name} model"
            )
        return endpoint.key

    @model_validator(mode="after")
    def _research_only_when_allowed(self) -> ModelSettings:
        """A research-only model as a role's default would run for everyone by default:
        refused at load when such models are turned off."""
        from bot import catalog

        if not self.allow_research_only:
            for role in _ROLE_INPUTS:
                endpoint = catalog.by_name(getattr(self, role))
                if endpoint.license == "research":
                    raise ValueError(
                        f"{role} = {endpoint.key!r} is tagged research only on fal, but "
                        "allow_research_only = false"
                    )
        return self


# What each routing role hands its model: (images, videos, audio files).
_ROLE_INPUTS = {"text": (0, 0, 0), "image": (1, 0, 0), "keyframes": (2, 0, 0), "extend": (0, 1, 0),
                "audio": (0, 0, 1), "retake": (0, 1, 0), "restyle": (0, 1, 0)}


class MediaSettings(Section):
    """[media]: limits on input files and where files are written."""

    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts that may resolve to private/loopback addresses (e.g. 127.0.0.1 in tests).",
    )
    max_input_bytes: int = Field(50 * MiB, gt=0, description="Largest input file.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Largest input image (pixels).")
    max_image_side: int = Field(
        8192, gt=0, description="Longest side of an input image or video picture (pixels).")
    max_image_aspect: float = Field(
        8.0, ge=1, description="Most elongated input picture: its long side over its short side.")
    prepare_concurrency: int = Field(
        1, ge=1, description="Inputs checked or prepared at once in one process; each may take "
        "up to 5 bytes a pixel of max_image_pixels in memory (about 190 MB by default).")
    max_video_seconds: float = Field(60.0, gt=0, description="Longest input video.")
    max_video_frames: int = Field(1800, gt=0, description="Most frames in an input video.")
    max_audio_seconds: float = Field(
        60.0, gt=0, description="Longest input sound file (each model also has its own range, "
        "e.g. 2 to 20 seconds for LTX-2.3 audio-to-video).")
    download_timeout_seconds: float = Field(60.0, gt=0, description="Per input download.")
    output_dir: str = Field("outputs", description="Console adapter saves finished videos here.")
    tmp_dir: str | None = Field(None, description="Temporary files; default: the system's.")


class JobSettings(Section):
    """[jobs]: how often a job's status card is edited, and how long a job may take."""

    edit_interval_seconds: float = Field(3.0, ge=0, description="Progress edits per message.")
    result_timeout_hours: float = Field(6.0, gt=0, description="Give up on a job after this.")
    lease_seconds: float = Field(
        30.0, ge=0.5,
        description="How long a process's hold on its jobs lasts without renewal (renewed every "
        "third of it): when a process dies, another on the same store adopts its jobs after this.")
    fal_unreachable_minutes: float = Field(
        30.0, gt=0,
        description="How long a job keeps trying while fal cannot be reached (its card says "
        "so) before it is failed, refunded and cancelled at fal; accepts fractions.")


class DiscordSettings(Section):
    """[discord]: the Discord bot, where it answers and who administers it."""

    token: SecretStr | None = Field(None, description="Prefer the DISCORD_TOKEN environment variable.")
    api_url: str | None = Field(None, description="REST base, e.g. a rate-limit proxy.")
    gateway_url: str | None = Field(
        None, description="Gateway WebSocket URL, e.g. a gateway proxy; default: Discord's own.")
    dev_guild_ids: list[int] = Field(default_factory=list, description="Sync commands here at once.")
    allowed_guilds: list[int] = Field(default_factory=list, description="Empty = any guild.")
    allowed_channels: list[int] = Field(default_factory=list, description="Empty = any channel.")
    allowed_roles: list[str] = Field(default_factory=list, description="Empty = anyone.")
    admin_roles: list[str] = Field(default_factory=list, description="Role names or ids with admin.")
    admin_users: list[int] = Field(default_factory=list, description="User ids with admin.")
    admin_channel: int | None = Field(
        None, description="Channel id where the bot tells its admins that the fal account "
        "failed or a budget alert is due; unset = a direct message to each of admin_users.")
    allow_dms: bool = Field(False, description="Answer in direct messages.")
    message_content_intent: bool = Field(
        False,
        description="Let the bot see the attachments of someone else's message when a user "
        "replies to it with a mention (a privileged intent: enable it in the Developer Portal "
        "too). Mentions, slash commands and message menus work without it.",
    )
    default_upload_limit_bytes: int = Field(10 * MiB, gt=0, description="When no interaction says.")
    shard_count: int | None = Field(
        None, ge=1, description="Shards of the whole bot; unset = one connection, no sharding.")
    shard_ids: list[int] = Field(
        default_factory=list, description="This process's shards (needs shard_count); empty = all.")
    sync_commands: Literal["auto"] | bool = Field(
        "auto", description="Sync the slash commands at start; auto = the process running shard 0.")

    @model_validator(mode="after")
    def _shards_in_range(self) -> DiscordSettings:
        if self.shard_ids and self.shard_count is None:
            raise ValueError("discord.shard_ids needs discord.shard_count (how many shards the "
                             "whole bot runs)")
        count = self.shard_count or 1
        outside = [i for i in self.shard_ids if not 0 <= i < count]
        if outside:
            raise ValueError(f"discord.shard_ids: {outside} outside 0..{count - 1} "
                             f"(discord.shard_count = {count})")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError(f"discord.shard_ids: {self.shard_ids} names a shard twice")
        return self

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs the slash commands: `auto` leaves it to shard 0's process."""
        if self.sync_commands != "auto":
            return bool(self.sync_commands)
        return not self.shard_ids or 0 in self.shard_ids


class SlackSettings(Section):
    """[slack]: the Slack app, its connection mode, where it answers and who administers it."""

    bot_token: SecretStr | None = Field(None, description="xoxb-…; prefer SLACK_BOT_TOKEN.")
    app_token: SecretStr | None = Field(None, description="xapp-… for Socket Mode; SLACK_APP_TOKEN.")
    signing_secret: SecretStr | None = Field(None, description="HTTP mode; SLACK_SIGNING_SECRET.")
    mode: Literal["socket", "http"] = Field("socket", description="socket needs no public URL.")
    host: str = Field("0.0.0.0", description="HTTP mode: listen address.")
    port: int = Field(3000, ge=0, le=65535, description="HTTP mode: listen port.")
    api_url: str | None = Field(None, description="Web API base, e.g. http://127.0.0.1:PORT/api/")
    command: str = Field("/ltx", description="The slash command as set up in the Slack app.")
    allowed_workspaces: list[str] = Field(default_factory=list, description="Team ids; empty = any.")
    allowed_channels: list[str] = Field(default_factory=list, description="Channel ids; empty = any.")
    admin_users: list[str] = Field(default_factory=list, description="User ids (U...) with admin.")
    admin_channel: str | None = Field(
        None, description="Channel id (C...) where the bot tells its admins that the fal account "
        "failed or a budget alert is due (invite the bot there); unset = a direct message to "
        "each of admin_users.")
    admin_team: str | None = Field(
        None, description="Installs in many workspaces (OAuth): the operator's workspace (T...) "
        "whose installation tells the admins (admin_channel, admin_users are that workspace's); "
        "unset = the admins are told in the log only.")
    upload_limit_bytes: int = Field(100 * MiB, gt=0, description="Largest video uploaded.")
    upload_timeout_seconds: float = Field(300.0, gt=0, description="Per video upload.")
    client_id: str | None = Field(
        None, description="OAuth install in many workspaces (HTTP mode); SLACK_CLIENT_ID.")
    client_secret: SecretStr | None = Field(None, description="With client_id; SLACK_CLIENT_SECRET.")
    token_key: SecretStr | None = Field(
        None, description="Fernet key that encrypts installed workspaces' tokens in the store; "
        "LTX_BOT_SLACK_TOKEN_KEY.")
    install_path: str = Field("/slack/install", description="OAuth: where an install starts.")
    redirect_uri: str | None = Field(
        None, description="OAuth: the Redirect URL set in the app, e.g. "
        "https://HOST/slack/oauth_redirect (its path is served); default path /slack/oauth_redirect.")

    @property
    def oauth(self) -> bool:
        """Installs in many workspaces (OAuth) rather than one bot token."""
        return bool(self.client_id and self.client_secret and self.client_secret.get_secret_value())


class ConsoleSettings(Section):
    """[console]: the local terminal chat."""

    admin_users: list[str] = Field(default_factory=list, description="Local user names.")
    upload_limit_bytes: int = Field(500 * MiB, gt=0, description="Largest video saved unshrunk.")


class LoggingSettings(Section):
    """[logging]: how much the bot logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logs go to stderr.")


class PathSettings(Section):
    """[paths]: where the bot keeps its own files besides the database."""

    data_dir: str | None = Field(
        None, description="Logs, terminal history and simulator state; default: the database's folder, else data/.",
    )


class MetricsSettings(Section):
    """[metrics]: an OpenMetrics (Prometheus) endpoint of `run` and `chat`, off unless a port is set."""

    port: int | None = Field(
        None, ge=0, le=65535,
        description="Serve OpenMetrics on this port at /metrics (0: any free port, logged); "
        "unset: no endpoint.")
    host: str = Field(
        "127.0.0.1",
        description="Address the metrics endpoint listens on; 0.0.0.0 for a scraper elsewhere.")


class Settings(Section):
    """All settings: the TOML file with the environment's overrides (see `load_settings`)."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    backend: BackendSettings = Field(default_factory=BackendSettings)
    prices: dict[str, PriceSettings] = Field(
        default_factory=dict, description="Price overrides per catalog key, [prices.KEY]."
    )
    models: ModelSettings = Field(default_factory=ModelSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("prices")
    @classmethod
    def _prices_for_known_models(cls, prices: dict[str, PriceSettings]) -> dict[str, PriceSettings]:
        # Aliases ("ltx2") become catalog keys ("ltx-2"), which is what prices are looked up by.
        from bot import catalog

        out: dict[str, PriceSettings] = {}
        for name, price in prices.items():
            try:
                out[catalog.by_name(name).key] = price
            except catalog.UnknownModel:
                known = ", ".join(e.key for e in catalog.ENDPOINTS)
                raise ValueError(f"[prices.{name}]: no model called {name!r} (models: {known})") from None
        return out

    @property
    def data_dir(self) -> Path:
        """The folder for the bot's own files: `paths.data_dir`, else the database's folder."""
        if self.paths.data_dir:
            return Path(self.paths.data_dir)
        if self.database.path:
            return Path(self.database.path).parent
        return Path("data")

    @property
    def uses_simulator(self) -> bool:
        return self.backend.uses_builtin_simulator

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord.token and self.discord.token.get_secret_value())

    @property
    def slack_enabled(self) -> bool:
        slack = self.slack
        if slack.mode == "http" and slack.oauth:  # tokens come from the installations
            return bool(slack.signing_secret and slack.signing_secret.get_secret_value()
                        and slack.token_key and slack.token_key.get_secret_value())
        if not (slack.bot_token and slack.bot_token.get_secret_value()):
            return False
        if slack.mode == "socket":
            return bool(slack.app_token and slack.app_token.get_secret_value())
        return bool(slack.signing_secret and slack.signing_secret.get_secret_value())

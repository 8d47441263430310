"""One settings model: a TOML file plus environment overrides.

Every section is a pydantic model with `extra="forbid"`, so an unknown key or a
wrong type is an error that names the key (and, for keys from the file, its
line). Secrets are `SecretStr`: they print as `**********` everywhere, and
`redacted_dump` is the only way settings are ever shown.

Environment overrides:
- well-known names for secrets and containers: `FAL_KEY`, `DISCORD_TOKEN`,
  `SLACK_BOT_TOKEN`, `SLACK_APP_TOKEN`, `SLACK_SIGNING_SECRET`, `LTX_BOT_DB`, `DATABASE_URL`;
- any setting as `LTX_BOT__SECTION__KEY=value` (value parsed as TOML when it
  parses, else taken as a string), e.g. `LTX_BOT__QUOTA__DAILY_CREDITS=500`.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from bot.config_database import one_database

DEFAULT_CONFIG_PATHS = ("config.toml", "/etc/ltx-bot/config.toml")
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
    tiers: dict[str, TierSettings] = Field(
        default_factory=dict, description="Named tiers, [quota.tiers.NAME]; see TierSettings."
    )


class BackendSettings(Section):
    """[backend]: fal (or the built-in simulator) and how the bot talks to it."""

    kind: Literal["auto", "fal", "sim"] = Field(
        "auto", description="auto = fal when a key is set, else the built-in simulator."
    )
    fal_key: SecretStr | None = Field(None, description="Prefer the FAL_KEY environment variable.")
    fal_queue_url: str = Field("https://queue.fal.run", description="fal queue API base URL.")
    fal_rest_url: str = Field("https://rest.fal.ai", description="fal storage (uploads) base URL.")
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


class PriceSettings(Section):
    """Operator override of a catalog entry's price (USD)."""

    usd_per_video: float | None = Field(None, ge=0, description="A flat price per video.")
    usd_per_megapixel: float | None = Field(
        None, ge=0, description="Per megapixel of width x height x frames, rounded up."
    )


class ModelSettings(Section):
    """Which catalog entry each kind of request goes to unless the user names a model."""

    text: str = Field("ltx-video", description="Model for a prompt alone.")
    image: str = Field("ltx-2", description="Model for one image (two on LTX-2: start and end).")
    keyframes: str = Field("ltx-13b", description="Model for keyframes and video conditioning.")
    extend: str = Field("ltx-extend", description="Model for extending a video.")

    @field_validator("text", "image", "keyframes", "extend")
    @classmethod
    def _a_model_for_its_role(cls, name: str, info: ValidationInfo) -> str:
        """A typo here would only surface when a user hits it; refuse it at load instead."""
        from bot import catalog

        try:
            endpoint = catalog.by_name(name)
        except catalog.UnknownModel:
            known = ", ".join(e.key for e in catalog.ENDPOINTS)
            raise ValueError(f"no model called {name!r} (models: {known})") from None
        images, videos = _ROLE_INPUTS[str(info.field_name)]
        if not endpoint.media.accepts(images, videos):
            raise ValueError(
                f"{endpoint.key} takes {endpoint.media.describe()}, so it cannot be the "
                f"{info.field_name} model"
            )
        return endpoint.key


# What each routing role hands its model: (images, videos).
_ROLE_INPUTS = {"text": (0, 0), "image": (1, 0), "keyframes": (2, 0), "extend": (0, 1)}


class MediaSettings(Section):
    """[media]: limits on input files and where files are written."""

    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts that may resolve to private/loopback addresses (e.g. 127.0.0.1 in tests).",
    )
    max_input_bytes: int = Field(50 * MiB, gt=0, description="Largest input file.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Largest input image (pixels).")
    max_video_seconds: float = Field(60.0, gt=0, description="Longest input video.")
    max_video_frames: int = Field(1800, gt=0, description="Most frames in an input video.")
    download_timeout_seconds: float = Field(60.0, gt=0, description="Per input download.")
    output_dir: str = Field("outputs", description="Console adapter saves finished videos here.")
    tmp_dir: str | None = Field(None, description="Temporary files; default: the system's.")


class JobSettings(Section):
    """[jobs]: how often a job's status card is edited, and how long a job may take."""

    edit_interval_seconds: float = Field(3.0, ge=0, description="Progress edits per message.")
    result_timeout_hours: float = Field(6.0, gt=0, description="Give up on a job after this.")


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
    allow_dms: bool = Field(False, description="Answer in direct messages.")
    message_content_intent: bool = Field(
        False,
        description="Let the bot see the attachments of someone else's message when a user "
        "replies to it with a mention (a privileged intent: enable it in the Developer Portal "
        "too). Mentions, slash commands and message menus work without it.",
    )
    default_upload_limit_bytes: int = Field(10 * MiB, gt=0, description="When no interaction says.")


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
    upload_limit_bytes: int = Field(100 * MiB, gt=0, description="Largest video uploaded.")
    upload_timeout_seconds: float = Field(300.0, gt=0, description="Per video upload.")


class ConsoleSettings(Section):
    """[console]: the local terminal chat."""

    admin_users: list[str] = Field(default_factory=list, description="Local user names.")
    upload_limit_bytes: int = Field(500 * MiB, gt=0, description="Largest video saved unshrunk.")


class LoggingSettings(Section):
    """[logging]: how much the bot logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logs go to stderr.")


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
    def uses_simulator(self) -> bool:
        if self.backend.kind == "sim":
            return True
        if self.backend.kind == "fal":
            return False
        return self.backend.fal_key is None or not self.backend.fal_key.get_secret_value()

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord.token and self.discord.token.get_secret_value())

    @property
    def slack_enabled(self) -> bool:
        if not (self.slack.bot_token and self.slack.bot_token.get_secret_value()):
            return False
        if self.slack.mode == "socket":
            return bool(self.slack.app_token and self.slack.app_token.get_secret_value())
        return bool(self.slack.signing_secret and self.slack.signing_secret.get_secret_value())


class ConfigError(Exception):
    """The configuration is invalid; the message names the key, the file and the line."""


# Environment names operators and container platforms expect for secrets.
WELL_KNOWN_ENV: dict[str, tuple[str, str]] = {
    "FAL_KEY": ("backend", "fal_key"),
    "DISCORD_TOKEN": ("discord", "token"),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "LTX_BOT_DB": ("database", "path"),
    "DATABASE_URL": ("database", "url"),
}
ENV_PREFIX = "LTX_BOT__"


def _env_value(raw: str, path: list[str]) -> Any:
    # A value for a text setting is taken as written: a token such as `123abc` or
    # `true` must not turn into a number or a bool (and then fail as "not a string").
    if _expects_text(path):
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _expects_text(path: list[str]) -> bool:
    """True when the setting at `path` is a string (or secret) field of Settings."""
    model: type[BaseModel] = Settings
    index = 0
    while index < len(path):
        info = model.model_fields.get(path[index])
        if info is None:
            return False
        annotation = info.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is dict and len(args) == 2:
            # dict sections such as quota.tiers.<name>: skip the name, descend into the value.
            index += 2
            value_type = args[1]
            if index < len(path) and isinstance(value_type, type) and issubclass(value_type, BaseModel):
                model = value_type
                continue
            return False
        if index == len(path) - 1:
            is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
            candidates = args if is_union else [annotation]
            return any(c in (str, SecretStr) for c in candidates)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            index += 1
            continue
        return False
    return False


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"environment override {'.'.join(path)}: {key} is not a section")
        node = child
    node[path[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (overrides, origin) where origin maps a dotted key to its env var name."""
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, (section, key) in WELL_KNOWN_ENV.items():
        if environ.get(name):
            _set_path(data, [section, key], environ[name])
            origin[f"{section}.{key}"] = name
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
            if path:
                _set_path(data, path, _env_value(raw, path))
                origin[".".join(path)] = name
    return data, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _split_key(raw: str) -> list[str] | None:
    """Split a TOML key (`a.b`, `"a.b".c`, `'x'`) into its parts; None when it is not a key."""
    parts: list[str] = []
    current = ""
    quote: str | None = None
    for char in raw.strip():
        if quote:
            if char == quote:
                quote = None
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if quote:
        return None
    parts.append(current.strip())
    if not all(parts):
        return None
    return parts


_TABLE_RE = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _better(
    best: tuple[int, int] | None, wanted: list[str], found: list[str], line: int
) -> tuple[int, int] | None:
    # A line counts when its key encloses the wanted one or lies inside it (a dotted key
    # `quota.daily = 1` under an unknown table); the deepest such line wins, the first on ties.
    depth = min(len(wanted), len(found))
    if wanted[:depth] != found[:depth]:
        return best
    if best is None or depth > best[0]:
        return (depth, line)
    return best


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Line number of the key (or table) at `loc` in TOML text; tomllib keeps no positions.

    Best effort but exact for the shapes a config file has: tables, dotted keys,
    quoted keys. For a deeper `loc` (a list item, a field inside an inline table)
    the line of the nearest enclosing key is given.
    """
    parts = [str(p) for p in loc]
    current: list[str] = []
    best: tuple[int, int] | None = None  # (matched depth, line)
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        table = _TABLE_RE.match(line)
        if table:
            keys = _split_key(table.group(1))
            if keys is None:
                continue
            current = keys
            best = _better(best, parts, current, number)
            continue
        key = _KEY_RE.match(line)
        if key:
            keys = _split_key(key.group(1))
            rest = line[key.end() :]
            for marker in ('"""', "'''"):
                if rest.count(marker) == 1:
                    in_multiline = marker
            if keys is None:
                continue
            best = _better(best, parts, [*current, *keys], number)
    return best[1] if best else None


def _did_you_mean(loc: tuple[str | int, ...]) -> str:
    """For an unknown key, the closest known key of the same section (a typo is the usual cause)."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        if info is None:
            # a dict section (quota.tiers.<name>): the value model is one level further down
            continue
        annotation = info.annotation
        args = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
            model = args[-1]
        else:
            return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, Path | None]:
    """Load settings from `path`, else `$LTX_BOT_CONFIG`, else the first default path that
    exists, then apply the environment overrides. Raises ConfigError naming key and line."""
    env = os.environ if environ is None else environ
    file_path = _config_file(path, env)
    text, data = _read_toml(file_path) if file_path is not None else ("", {})
    overrides, env_origin = env_overrides(env)
    origins = _Origins(file_path, text, env_origin)
    if problem := one_database(data, overrides, env_origin, lambda k: origins._where(k, tuple(k.split(".")))[1]):
        raise ConfigError(f"invalid configuration:\n  {problem}")
    try:
        settings = Settings.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise origins.config_error(exc) from None
    return settings, file_path


def _config_file(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The file `load_settings` reads; None when none is named and no default exists."""
    if path is not None:
        return _existing(Path(path), "")
    if env.get("LTX_BOT_CONFIG"):
        return _existing(Path(env["LTX_BOT_CONFIG"]), " (from LTX_BOT_CONFIG)")
    return next((Path(c) for c in DEFAULT_CONFIG_PATHS if Path(c).is_file()), None)


def _existing(file_path: Path, named_by: str) -> Path:
    # A file the operator named must exist; only the default paths may be absent.
    if not file_path.is_file():
        raise ConfigError(f"config file not found: {file_path}{named_by}")
    return file_path


def _read_toml(file_path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text (for line numbers in errors) and its parsed tables."""
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file_path}: cannot read: {type(exc).__name__}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names line and column, never the value.
        raise ConfigError(f"{file_path}: not valid TOML: {exc}") from None


@dataclass(frozen=True)
class _Origins:
    """Where the values came from, so that an error can name the file line or variable."""

    file_path: Path | None
    text: str  # the file's text, "" without a file
    env: dict[str, str]  # dotted key -> the environment variable that set it

    def config_error(self, exc: ValidationError) -> ConfigError:
        """Every problem on its own line, in file order (problems without a line first)."""
        problems = sorted((self._problem(err) for err in exc.errors()), key=lambda p: p[0])
        return ConfigError("invalid configuration:\n  " + "\n  ".join(p[1] for p in problems))

    def _problem(self, err: ErrorDetails) -> tuple[int, str]:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        dotted = ".".join(str(p) for p in loc)
        # err["msg"] never echoes the input, so a mistyped secret stays out of the message.
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(loc)
        else:
            msg = err["msg"].removeprefix("Value error, ")
        line, where = self._where(dotted, loc)
        return line or 0, f"{dotted}: {msg} ({where})"

    def _where(self, dotted: str, loc: tuple[str | int, ...]) -> tuple[int | None, str]:
        env_name = next(
            (self.env[k] for k in self.env if dotted == k or dotted.startswith(k + ".")), None
        )
        if env_name is not None:
            return None, f"environment variable {env_name}"
        if self.file_path is None:
            return None, "defaults"
        line = _line_of(self.text, loc)
        return line, f"{self.file_path}" + (f" line {line}" if line else "")


def _redact_url(value: str) -> str:
    # A URL setting (proxy, webhook) may carry a password or a token in its query:
    # show where it points, not how it authenticates.
    if "://" not in value:
        return value
    parts = urlsplit(value)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<redacted>@" + netloc.rsplit("@", 1)[1]
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redacted_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, every secret replaced by a marker."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "<set, redacted>" if value.get_secret_value() else "<empty>"
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return _redact_url(value)
        return value

    result = walk(settings)
    assert isinstance(result, dict)
    return result

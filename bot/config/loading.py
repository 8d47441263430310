"""Settings from a TOML file plus environment overrides, with errors that name the line.

Environment overrides:
- well-known names for secrets and containers: `FAL_KEY`, `DISCORD_TOKEN`,
  `SLACK_BOT_TOKEN`, `SLACK_APP_TOKEN`, `SLACK_SIGNING_SECRET`, `LTX_BOT_DB`, `DATABASE_URL`;
- any setting as `LTX_BOT__SECTION__KEY=value` (value parsed as TOML when it
  parses, else taken as a string), e.g. `LTX_BOT__QUOTA__DAILY_CREDITS=500`.

`redacted_dump` is the only way settings are ever shown.
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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    SecretStr,
    ValidationError,
)
from pydantic_core import ErrorDetails

from bot.config.database import one_database
from bot.config.sections import DEFAULT_CONFIG_PATHS, Settings
from bot.jsonpath import PathError, set_path


class ConfigError(Exception):
    """The configuration is invalid; the message names the key, the file and the line."""


# Environment names operators and container platforms expect for secrets.
WELL_KNOWN_ENV: dict[str, tuple[str, str]] = {
    "FAL_KEY": ("backend", "fal_key"),
    "DISCORD_TOKEN": ("discord", "token"),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_CLIENT_ID": ("slack", "client_id"),
    "SLACK_CLIENT_SECRET": ("slack", "client_secret"),
    "LTX_BOT_SLACK_TOKEN_KEY": ("slack", "token_key"),
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
    try:
        set_path(data, path, value)
    except PathError as exc:
        raise ConfigError(f"environment override {'.'.join(path)}: {exc.key} is not a section") from None


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

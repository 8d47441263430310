"""The config loader: the example file, line numbers in errors, environment overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bot.config import ConfigError, Settings, load_settings, redacted_dump

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def field_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every setting as (section, ..., key); dict sections (tiers, prices) via their value model."""
    paths: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(field_paths(annotation, (*prefix, name)))
        elif getattr(annotation, "__origin__", None) is dict and isinstance(args[1], type) and issubclass(
            args[1], BaseModel
        ):
            paths.extend(field_paths(args[1], (*prefix, name, "*")))
        else:
            paths.append((*prefix, name))
    return paths


def example_keys(text: str) -> set[tuple[str, ...]]:
    """Keys the example documents, set or commented out (`# key = ...`), with their table."""
    keys: set[tuple[str, ...]] = set()
    table: tuple[str, ...] = ()
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        head = re.fullmatch(r"\[([A-Za-z0-9_.\-]+)\]", line)
        if head:
            table = tuple(head.group(1).split("."))
            continue
        key = re.match(r"([A-Za-z0-9_]+)\s*=", line)
        if key:
            keys.add((*table, key.group(1)))
    return keys


def uncommented_example() -> str:
    """The example with every commented setting switched on, to validate those too."""
    lines = []
    for raw in EXAMPLE.read_text().splitlines():
        match = re.match(r"#\s?((\[[a-z0-9_.\-]+\])|([a-z_][a-z0-9_]* = .*))$", raw)
        lines.append(match.group(1) if match else raw)
    return "\n".join(lines)


def test_example_validates_as_is() -> None:
    settings, path = load_settings(EXAMPLE, environ={})
    assert path == EXAMPLE
    # Every value in the example is the default: an empty file means the same thing.
    assert settings == Settings()


def test_example_documents_every_setting() -> None:
    documented = example_keys(EXAMPLE.read_text())
    missing = []
    for path in field_paths(Settings):
        if "*" in path:
            star = path.index("*")
            ok = any(k[:star] == path[:star] and k[star + 1 :] == path[star + 1 :] and len(k) == len(path)
                     for k in documented)
        else:
            ok = path in documented
        if not ok:
            missing.append(".".join(path))
    assert missing == []


def test_example_with_optional_settings_switched_on_validates(tmp_path: Path) -> None:
    text = uncommented_example()
    assert "[quota.tiers.vip]" in text and 'fal_key = ""' in text
    config = tmp_path / "all.toml"
    config.write_text(text)
    settings, _ = load_settings(config, environ={})
    assert settings.quota.tiers["vip"].daily_credits == 1000
    assert settings.prices["ltx-2"].usd_per_megapixel == 0.0018
    assert settings.slack.api_url == "https://slack.com/api/"


def write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(text)
    return config


def error_of(config: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ=environ or {})
    return str(info.value)


def test_unknown_key_names_key_line_and_suggestion(tmp_path: Path) -> None:
    config = write(tmp_path, "# top\n\n[quota]\ndaily_credits = 5\ndaily_credit = 7\n")
    message = error_of(config)
    assert f"quota.daily_credit: unknown key; did you mean 'daily_credits'? ({config} line 5)" in message


def test_unknown_section_names_its_line(tmp_path: Path) -> None:
    config = write(tmp_path, "[quota]\ndaily_credits = 5\n\n[qouta]\ndaily_credits = 1\n")
    assert f"qouta: unknown key; did you mean 'quota'? ({config} line 4)" in error_of(config)


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, '[backend]\nkind = "sim"\nmax_concurrent = "two"\n')
    message = error_of(config)
    assert "backend.max_concurrent: Input should be a valid integer" in message
    assert f"({config} line 3)" in message


def test_dotted_keys_and_nested_tables_get_their_line(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "[quota]\n"
        "tiers.gold.daily_credits = -1\n"
        "\n"
        "[quota.tiers.silver]\n"
        "users = [\n"
        "  'console:ann',\n"
        "]\n"
        "rols = ['x']\n",
    )
    message = error_of(config)
    assert f"quota.tiers.gold.daily_credits: Input should be greater than or equal to 0 ({config} line 2)" in message
    assert f"quota.tiers.silver.rols: unknown key; did you mean 'roles'? ({config} line 8)" in message
    # Several problems are all reported, in file order.
    assert message.index("line 2") < message.index("line 8")


def test_bad_value_in_a_list_points_at_the_key(tmp_path: Path) -> None:
    config = write(tmp_path, "[discord]\nadmin_users = [1, 'two']\n")
    assert "discord.admin_users.1: Input should be a valid integer" in error_of(config)
    assert f"({config} line 2)" in error_of(config)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    config = write(tmp_path, "[quota]\ndaily_credits = = 3\n")
    message = error_of(config)
    assert str(config) in message and "line 2" in message


def test_wrong_type_in_environment_names_the_variable() -> None:
    message = error_of(None, {"LTX_BOT__QUOTA__DAILY_CREDITS": "many"})
    assert "quota.daily_credits: Input should be a valid integer" in message
    assert "environment variable LTX_BOT__QUOTA__DAILY_CREDITS" in message


def test_unknown_key_in_environment_names_the_variable() -> None:
    message = error_of(None, {"LTX_BOT__QUOTA__NOPE": "1"})
    assert "quota.nope: unknown key (environment variable LTX_BOT__QUOTA__NOPE)" in message


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, '[quota]\ndaily_credits = 5\n[database]\npath = "a.sqlite3"\n')
    settings, _ = load_settings(
        config,
        environ={
            "LTX_BOT__QUOTA__DAILY_CREDITS": "42",
            "LTX_BOT__CONSOLE__ADMIN_USERS": '["ann", "bob"]',
            "LTX_BOT__BACKEND__KIND": "sim",
            "LTX_BOT_DB": "/data/x.sqlite3",
            "FAL_KEY": "fal-secret",
            "DISCORD_TOKEN": "discord-secret",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_SIGNING_SECRET": "sign",
        },
    )
    assert settings.quota.daily_credits == 42
    assert settings.console.admin_users == ["ann", "bob"]
    assert settings.backend.kind == "sim"
    assert settings.database.path == "/data/x.sqlite3"
    assert settings.backend.fal_key is not None and settings.backend.fal_key.get_secret_value() == "fal-secret"
    assert settings.discord_enabled and settings.slack_enabled


def test_text_settings_from_environment_stay_text() -> None:
    # "123" and "true" would read as TOML number and bool; for a text setting they are text.
    settings, _ = load_settings(
        None, environ={"LTX_BOT__SLACK__COMMAND": "123", "LTX_BOT__BACKEND__FAL_KEY": "true",
                       "LTX_BOT__QUOTA__TIERS__GOLD__DAILY_CREDITS": "9"}
    )
    assert settings.slack.command == "123"
    assert settings.backend.fal_key is not None and settings.backend.fal_key.get_secret_value() == "true"
    assert settings.quota.tiers["gold"].daily_credits == 9


def test_ltx_bot_config_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, "[quota]\ndaily_credits = 77\n")
    settings, path = load_settings(None, environ={"LTX_BOT_CONFIG": str(config)})
    assert path == config and settings.quota.daily_credits == 77
    missing = tmp_path / "nope.toml"
    assert "config file not found" in error_of(None, {"LTX_BOT_CONFIG": str(missing)})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    assert f"config file not found: {tmp_path / 'x.toml'}" in error_of(tmp_path / "x.toml")


def test_secret_never_in_error_message(tmp_path: Path) -> None:
    config = write(tmp_path, '[backend]\nfal_key = ["SECRET-IN-A-LIST-123"]\n')
    message = error_of(config, {"DISCORD_TOKEN": "x", "LTX_BOT__SLACK__BOT_TOKEN": "[1, 2]"})
    assert "SECRET-IN-A-LIST-123" not in message
    assert "backend.fal_key" in message


def test_redacted_dump_hides_secrets_and_url_credentials() -> None:
    settings = Settings.model_validate(
        {
            "backend": {"fal_key": "fal-abc", "webhook_url": "https://u:pw-xyz@hook.example/p?token=tok-123"},
            "discord": {"token": "disc-abc", "api_url": "http://proxy:8080/api"},
            "slack": {"bot_token": "", "app_token": "xapp-abc"},
        }
    )
    dump = redacted_dump(settings)
    text = repr(dump)
    for secret in ("fal-abc", "disc-abc", "xapp-abc", "pw-xyz", "tok-123"):
        assert secret not in text
    assert dump["backend"]["fal_key"] == "<set, redacted>"
    assert dump["slack"]["bot_token"] == "<empty>"
    assert dump["slack"]["signing_secret"] is None
    assert dump["backend"]["webhook_url"] == "https://<redacted>@hook.example/p?<redacted>"
    assert dump["discord"]["api_url"] == "http://proxy:8080/api"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_redacted_dump_covers_every_setting() -> None:
    flat = _flatten(redacted_dump(Settings()))
    expected = {".".join(p) for p in field_paths(Settings) if "*" not in p}
    assert expected <= set(flat)


def test_every_setting_says_what_it_is_for() -> None:
    # check-config and the README's settings reference show these descriptions to operators.
    from bot.config import PriceSettings, TierSettings

    missing = [".".join(p) for model in (Settings, TierSettings, PriceSettings)
               for p in field_paths(model)
               if "*" not in p and not _field(model, p).description]
    assert missing == []


def _field(model: type[BaseModel], path: tuple[str, ...]) -> Any:
    for part in path[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model.model_fields[path[-1]]


def test_configuration_page_lists_every_setting_under_its_section() -> None:
    from bot.config import PriceSettings, TierSettings

    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    sections = re.split(r"^#{4,5} ", doc, flags=re.M)
    tables = {s.split("\n", 1)[0].strip("`[] "): s for s in sections[1:]}
    missing = []
    leaf_paths = [p for p in field_paths(Settings) if "*" not in p]
    leaf_paths += [("quota.tiers.NAME", k) for k in TierSettings.model_fields]
    leaf_paths += [("prices.KEY", k) for k in PriceSettings.model_fields]
    for path in leaf_paths:
        section, key = ".".join(path[:-1]), path[-1]
        if f"| `{key}` |" not in tables.get(section, ""):
            missing.append(f"{section}.{key}")
    assert missing == []


def test_model_names_and_price_keys_are_checked_at_load(tmp_path: Path) -> None:
    from bot.config import ConfigError, load_settings

    bad = tmp_path / "models.toml"
    bad.write_text('[models]\nimage = "nope"\ntext = "ltx-2"\n\n[prices.bogus]\nusd_per_video = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(bad, environ={})
    text = str(info.value)
    assert "models.image: no model called 'nope'" in text and "line 2" in text
    assert "cannot be the text model" in text and "line 3" in text
    assert "[prices.bogus]" in text
    alias = tmp_path / "alias.toml"
    alias.write_text('[models]\nimage = "ltx2"\n\n[prices.ltx2]\nusd_per_megapixel = 0.002\n')
    settings, _ = load_settings(alias, environ={})
    assert settings.models.image == "ltx-2" and "ltx-2" in settings.prices

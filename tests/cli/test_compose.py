"""compose.yaml, read as data (no container engine here): PostgreSQL with a volume, two
bot replicas on shards 0 and 1 of 2, health checks, and every secret from the env file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from bot.config.loading import WELL_KNOWN_ENV

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = "ltx-bot.env"
BOTS = ("bot-0", "bot-1")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_postgres_keeps_its_data_on_a_named_volume_and_reports_health() -> None:
    data = compose()
    db = data["services"]["db"]
    assert db["image"].startswith("postgres:")
    volume, _, target = db["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data" and volume in data["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["env_file"] == [ENV_FILE]


def test_two_bot_replicas_run_shards_0_and_1_of_2_on_the_shared_database() -> None:
    services = compose()["services"]
    shards = []
    for name in BOTS:
        bot = services[name]
        env = bot["environment"]
        assert env["LTX_BOT__DISCORD__SHARD_COUNT"] == "2"
        # The value is read as TOML, like every LTX_BOT__ setting.
        shards.append(tomllib.loads(f"v = {env['LTX_BOT__DISCORD__SHARD_IDS']}")["v"])
        assert bot["command"] == ["run"]
        assert bot["depends_on"]["db"]["condition"] == "service_healthy"
        assert bot["healthcheck"]["test"] == ["CMD", "ltx-bot", "health"]
        assert bot["env_file"] == [ENV_FILE]
        # Each replica its own /data (heartbeats): `health` checks this container's.
        assert bot["volumes"][0].endswith(":/data")
    assert shards == [[0], [1]]
    assert services["bot-0"]["volumes"] != services["bot-1"]["volumes"]


def test_no_secret_is_written_in_the_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    data = compose()
    secret_names = {*WELL_KNOWN_ENV, "POSTGRES_PASSWORD"} - {"LTX_BOT_DB"}
    for name, service in data["services"].items():
        env = service.get("environment", {})
        assert not secret_names & set(env), (name, env)
        for key, value in env.items():
            assert not re.search(r"TOKEN|SECRET|PASSWORD|KEY$|URL$", key), (name, key)
            assert "://" not in str(value) and "@" not in str(value), (name, key)
    assert not re.search(r"postgres(ql)?://[^ \n]*:[^ \n@]+@", text.replace(
        "postgresql://ltx:<the same password>@db", ""))


def test_the_example_env_file_names_every_secret_compose_needs_and_holds_none() -> None:
    example = (ROOT / f"{ENV_FILE}.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines()
                  if line and not line.startswith("#"))
    assert set(values) == {"FAL_KEY", "DISCORD_TOKEN", "POSTGRES_PASSWORD", "DATABASE_URL"}
    assert values["DATABASE_URL"].endswith("@db:5432/ltx")
    assert all(not v for k, v in values.items() if k != "DATABASE_URL")
    assert ENV_FILE in (ROOT / ".gitignore").read_text().split()

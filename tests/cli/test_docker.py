"""The Dockerfile, read as text (no Docker engine here): the parts operators rely on."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def only(name: str) -> list[str]:
    return [args for word, args in instructions() if word == name]


def test_base_image_is_python_311_slim() -> None:
    assert only("FROM") == ["python:3.11-slim"]


def test_runs_as_a_non_root_user() -> None:
    users = only("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # The USER comes after every RUN that needs root (installing, creating the user).
    order = [word for word, _ in instructions()]
    assert max(i for i, w in enumerate(order) if w == "RUN") < max(i for i, w in enumerate(order) if w == "USER")
    assert any("useradd" in r for r in only("RUN"))


def test_state_lives_on_the_data_volume() -> None:
    assert json.loads(only("VOLUME")[0]) == ["/data"]
    env = " ".join(only("ENV"))
    assert "LTX_BOT_DB=/data/" in env
    assert only("WORKDIR")[-1] == "/data"  # relative paths (outputs/) land on the volume


def test_command_is_run_and_healthcheck_is_real() -> None:
    entry = json.loads(only("ENTRYPOINT")[0])
    cmd = json.loads(only("CMD")[0])
    assert entry + cmd == ["ltx-bot", "run"]
    [health] = only("HEALTHCHECK")
    assert "--interval=" in health and "--start-period=" in health
    probe = json.loads(health.split("CMD", 1)[1].strip())
    assert probe == ["ltx-bot", "health"]


def test_build_downloads_only_packages() -> None:
    runs = " ".join(only("RUN"))
    for tool in ("curl", "wget", "apt-get", "git clone"):
        assert tool not in runs
    assert not only("ADD")  # ADD can fetch URLs; COPY cannot
    assert "pip install" in runs


def test_copied_sources_are_what_the_package_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = " ".join(only("COPY"))
    for package in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert package.rstrip("*") in copied
    assert "pyproject.toml" in copied and "README" in copied


def test_dockerignore_keeps_state_and_secrets_out() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)

    for path in (".venv", ".venv/bin/python", "data", "data/ltx-bot.sqlite3", "outputs",
                 "outputs/ltx-1.mp4", "ltx-bot.sqlite3", "config.toml", ".git", "tests"):
        assert ignored(path), path
    for path in ("bot", "adapters", "pyproject.toml", "README.md"):
        assert not ignored(path), path

"""The core never imports an adapter or a platform library: adapters are found only
through the `ltx_bot.adapters` entry points (bot/plugins.py)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.console.helpers import clean_env

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
FORBIDDEN = ("adapters", "discord", "slack_bolt", "slack_sdk")

# In a fresh interpreter: refuse (and record) every attempt to import an adapter or a
# platform library, import every bot.* module, then run the commands that start
# adapters with none registered, as if only the core were installed. A core that
# finds adapters by name tries to import one; a core that asks the entry points
# finds none and says so.
CHILD = """
import importlib.abc, importlib.metadata, json, pkgutil, sys

FORBIDDEN = {forbidden!r}
attempts = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            attempts.append(name)
            raise ImportError(f"the core imported {{name}}")
        return None

sys.meta_path.insert(0, Refuse())
real_entry_points = importlib.metadata.entry_points

def no_adapters(**params):
    if params.get("group") == "ltx_bot.adapters":
        return importlib.metadata.EntryPoints(())
    return real_entry_points(**params)

importlib.metadata.entry_points = no_adapters

import bot
modules = [m.name for m in pkgutil.walk_packages(bot.__path__, "bot.")]
for name in modules:
    importlib.import_module(name)

from bot import cli
codes = {{}}
for command in ("check-config", "chat", "run"):
    try:
        codes[command] = cli.main([command, "--config", {config!r}])
    except BaseException as exc:
        codes[command] = repr(exc)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
print(json.dumps({{"modules": modules, "attempts": attempts, "loaded": loaded, "codes": codes}}))
"""


def test_the_core_loads_no_adapter_nor_platform_library(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "bot.sqlite3"}"\n')
    script = CHILD.format(forbidden=FORBIDDEN, config=str(config))
    # A Discord token: a core that imports adapters by name would try to start Discord.
    env = clean_env(DISCORD_TOKEN="discord-test-token-imports")
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "bot.cli" in report["modules"] and "bot.app" in report["modules"]
    assert report["attempts"] == [], done.stderr
    assert report["loaded"] == []
    # Without any adapter installed, `run` and `chat` refuse with a message, not a crash.
    assert report["codes"] == {"check-config": 2, "chat": 2, "run": 2}, done.stderr
    assert "no terminal adapter is installed" in done.stderr


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Modules named by import statements, and strings handed to any call (importers)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords)]
            found += [(node.lineno, v.value) for v in values
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def test_no_module_in_bot_names_an_adapter_to_import() -> None:
    adapter_module = re.compile(r"^adapters(\.|$|:)")
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted(BOT.rglob("*.py"))
        for line, name in _imported_names(ast.parse(path.read_text(), str(path)))
        if adapter_module.match(name)
    ]
    assert offences == []


def test_the_import_check_sees_what_it_forbids() -> None:
    """The checker itself: each way the old cli reached an adapter is caught."""
    source = ("import adapters.console\nfrom adapters import discord_bot\n"
              "importlib.import_module('adapters.slack_app')\n"
              "_starter('adapters.discord_bot', 'start_discord')\n")
    names = [name for _, name in _imported_names(ast.parse(source))]
    assert {"adapters.console", "adapters", "adapters.slack_app", "adapters.discord_bot"} <= set(names)


PLATFORM_WORD = re.compile(r"discord|slack|console", re.IGNORECASE)
# Where the core may name a platform: its configuration sections ("[discord] admin_users",
# `settings.slack`), which bot/config/ defines.
SECTION_NAME = re.compile(r"\[(discord|slack|console)\]|settings\.(discord|slack|console)\b")


def platform_mentions(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if PLATFORM_WORD.search(SECTION_NAME.sub("", line))]


def test_the_core_names_no_platform_except_as_configuration_sections() -> None:
    offences = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in sorted(BOT.rglob("*.py")) if path.parent.name != "config"
        for line in platform_mentions(path.read_text())
    ]
    assert offences == []
    assert not re.search(r"platform\s*(==|!=)", "\n".join(p.read_text() for p in BOT.rglob("*.py")))


def test_the_platform_check_sees_a_name_but_not_a_section() -> None:
    assert platform_mentions('return "server" if place.platform == "discord" else "x"')
    assert platform_mentions("# Slack re-sends events")
    assert not platform_mentions('where = "[console] admin_users"; settings.slack.command')

"""Helpers for driving `ltx-bot` as a subprocess: configs, inputs, and reading its output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
from PIL import Image

from bot import catalog
from bot.config import load_settings
from bot.preview import preview
from tests.guard import with_loopback_guard

BIN = Path(sys.executable).parent / "ltx-bot"
SECRET_NAMES = ("FAL_KEY", "DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
# Holds the sitecustomize.py that keeps a child process on loopback.
def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any ltx-bot setting or secret, plus `extra`, with the
    loopback guard (tests/loopback_guard/sitecustomize.py) loaded by every Python child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTX_BOT") and k not in SECRET_NAMES}
    env.update(extra)
    return with_loopback_guard(env)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_config(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    """A config with state under tmp_path, the built-in simulator, fast runs, no cooldown."""
    data: dict[str, dict[str, Any]] = {
        "database": {"path": str(tmp_path / "bot.sqlite3")},
        "media": {"output_dir": str(tmp_path / "outputs"), "tmp_dir": str(tmp_path / "tmp")},
        "jobs": {"edit_interval_seconds": 0.0},
        "quota": {"cooldown_seconds": 0.0, "max_concurrent_jobs": 10},
        "backend": {"kind": "sim", "sim_queue_seconds": 0.0, "sim_run_seconds": 0.2,
                    "sim_concurrency": 4, "max_concurrent": 4},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    text = ""
    for name, values in data.items():
        text += f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()) + "\n"
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def run_cli(args: list[str], *, cwd: Path, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], cwd=cwd, input=stdin, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def make_png(path: Path, color: tuple[int, int, int] = (200, 120, 40), size: tuple[int, int] = (320, 240)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def make_mp4(path: Path, frames: int = 24, fps: int = 24, size: int = 64) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", (size, size), (i * 9 % 255, 60, 90)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def saved_videos(stdout: str, cwd: Path) -> dict[int, Path]:
    """job id -> saved file, from the `saved: <path>` lines (files are named ltx-<job>-...).
    Paths under the bot's working directory `cwd` are printed relative to it."""
    found: dict[int, Path] = {}
    for line in stdout.splitlines():
        if line.startswith("saved: "):
            path = cwd / line.removeprefix("saved: ")
            match = re.match(r"ltx-(\d+)-", path.name)
            assert match, path
            found[int(match.group(1))] = path
    return found


def decoded_frames(path: Path) -> int:
    """Frames that really decode (not what the header claims): the file plays to the end."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def expected_frames(line: str, config: Path) -> int:
    """The frame count a console line asks for, by the same grammar and catalog the bot uses."""
    settings, _ = load_settings(config, environ={})
    request = preview(line, [], settings)
    endpoint = catalog.by_endpoint_id(request["endpoint"])
    return catalog.output_geometry(endpoint, request["input"])[2]

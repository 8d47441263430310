"""Every file the bot makes is 0600 and every folder 0700, under a wide umask (022): the
database, its WAL and SHM, backups, heartbeats, logs (rotated ones too), console
history, saved videos, scratch files and the simulator's state directory; both when
`ltx-bot` runs them and when the library is used directly."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.console_prompt import open_history
from bot import heartbeat
from bot.logfile import PrivateFileHandler
from bot.private_files import copy_private, private_dir, write_private
from bot.sim import Simulator
from tests.console.helpers import BIN, clean_env, make_png, write_config
from tests.fal.conftest import fast_options, make_client
from tests.fal.helpers import follow


@pytest.fixture(autouse=True)
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def wide(root: Path) -> list[str]:
    """Everything under `root` (itself included) that others could read."""
    found = []
    for path in [root, *root.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if mode(path) != want:
            found.append(f"{path.relative_to(root.parent)} {oct(mode(path))}")
    return found


def test_a_chat_session_and_a_backup_leave_only_private_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path, database={"path": str(data / "bot.sqlite3")},
                          media={"output_dir": str(tmp_path / "outputs"),
                                 "tmp_dir": str(tmp_path / "tmp")})
    make_png(tmp_path / "cat.png")
    env = clean_env()
    run = subprocess.run([str(BIN), "chat", "--config", str(config), "--user", "ann"],
                         cwd=tmp_path, env=env, input="/video --image cat.png a cat --seconds 1\n",
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "saved: " in run.stdout
    backup = subprocess.run([str(BIN), "backup", str(tmp_path / "backups" / "b.sqlite3"),
                             "--config", str(config)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert backup.returncode == 0, backup.stderr
    assert (data / "logs" / "ltx-bot.log").is_file()
    assert any((data / "sim" / "requests").glob("*.json"))  # the built-in simulator's state
    assert any((tmp_path / "outputs").glob("*.mp4"))
    for root in (data, tmp_path / "outputs", tmp_path / "tmp", tmp_path / "backups"):
        assert root.exists() and wide(root) == [], root


def test_the_library_makes_private_files_under_any_umask(tmp_path: Path) -> None:
    beat = heartbeat.Heartbeat(tmp_path / "a", "run")
    beat.write()
    open_history(tmp_path / "b", "ann")
    write_private(tmp_path / "c" / "d" / "state.json", b"{}")
    copy_private(tmp_path / "c" / "d" / "state.json", tmp_path / "e" / "video.mp4")
    private_dir(tmp_path / "f" / "g")
    for root in ("a", "b", "c", "e", "f"):
        assert wide(tmp_path / root) == [], root


def test_log_files_are_private_also_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "ltx-bot.log"
    handler = PrivateFileHandler(path)
    handler.maxBytes = 200
    logger = logging.getLogger("tests.file_modes")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(20):
            logger.warning("line %d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "logs" / "ltx-bot.log.1").exists()
    assert wide(tmp_path / "logs") == []


def test_an_existing_wide_log_file_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "ltx-bot.log"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    PrivateFileHandler(path).close()
    assert mode(path) == 0o600


async def test_the_simulators_state_directory_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with Simulator(fast_options(state_dir=state)) as sim, httpx.AsyncClient() as http:
        fal = make_client(http, sim.url)
        handle = await fal.enqueue("fal-ai/ltx-video-13b-distilled/multiconditioning",
                                   {"prompt": "kept", "number_of_frames": 9})
        await follow(fal, handle)
        await fal.result(handle)
        record = json.loads((state / "requests" / f"{handle.request_id}.json").read_text())
        assert record["state"] == "COMPLETED"
    assert wide(state) == []

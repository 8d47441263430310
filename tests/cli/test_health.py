"""Heartbeats: one file per long-running process, and `ltx-bot health` reading them.

`run` and `chat` each write their own heartbeat, remove only their own, and
`health` passes while any of them is alive (as `docker run -it ... chat` needs).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from bot import heartbeat
from tests.cli.test_run import BOUND, finish, read_until, spawn, stop
from tests.console.helpers import BIN, clean_env, write_config


def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_heartbeat_is_one_private_file_per_process(tmp_path: Path) -> None:
    mine = heartbeat.Heartbeat(tmp_path, "run")
    other = heartbeat.Heartbeat(tmp_path, "chat", pid=os.getpid() + 1)
    mine.write()
    other.write()
    assert mine.path == tmp_path / "heartbeats" / f"{socket.gethostname()}-{os.getpid()}.json"
    assert stat.S_IMODE(mine.path.stat().st_mode) == 0o600
    data = json.loads(mine.path.read_text())
    assert (data["pid"], data["command"], data["host"]) == (os.getpid(), "run", socket.gethostname())
    assert abs(data["time"] - time.time()) < BOUND
    mine.remove()
    assert not mine.path.exists() and other.path.exists()  # never another's


def test_health_passes_on_any_fresh_heartbeat_and_ignores_stale_ones(tmp_path: Path) -> None:
    now = time.time()
    dead = heartbeat.Heartbeat(tmp_path, "run", host="old-box", pid=7)
    dead.write()
    dead.path.write_text(json.dumps({**json.loads(dead.path.read_text()), "time": now - 3600}))
    ok, message = heartbeat.check(tmp_path, max_age=90, now=now)
    assert not ok and "`run` (pid 7 on old-box), is 3600 s old" in message
    heartbeat.Heartbeat(tmp_path, "chat", host="box", pid=8).write()
    (tmp_path / "heartbeats" / "stray.json").write_text("not a heartbeat")
    ok, message = heartbeat.check(tmp_path, max_age=90)
    assert ok and message.startswith("heartbeat of `chat` (pid 8 on box)")
    assert "old-box" not in message


def test_a_start_removes_the_heartbeats_of_gone_processes_on_its_host_only(tmp_path: Path) -> None:
    host = socket.gethostname()
    gone = heartbeat.Heartbeat(tmp_path, "run", pid=gone_pid())
    alive = heartbeat.Heartbeat(tmp_path, "chat", pid=os.getppid())
    elsewhere = heartbeat.Heartbeat(tmp_path, "run", host=f"not-{host}", pid=gone.pid)
    for beat in (gone, alive, elsewhere):
        beat.write()

    async def start_and_stop() -> list[Path]:
        async with heartbeat.beating(tmp_path, "run") as mine:
            during = sorted(p.name for p in (tmp_path / "heartbeats").glob("*.json"))
            assert mine.path.name in during
        return sorted((tmp_path / "heartbeats").glob("*.json"))

    left = asyncio.run(start_and_stop())
    assert left == sorted([alive.path, elsewhere.path])


async def health(config: Path, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN), "health", "--config", str(config), cwd=cwd, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(BOUND):
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_health_follows_chat_and_run_each_by_its_own_heartbeat(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    chat = await spawn(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                       env=clean_env(), stdin=True)
    run = await spawn(["run", "--config", str(config), "--user", "bob"], cwd=tmp_path,
                      env=clean_env(), stdin=True)
    chat_seen: list[str] = []
    run_seen: list[str] = []
    try:
        assert chat.stdin is not None and run.stdin is not None
        for proc, seen in ((chat, chat_seen), (run, run_seen)):
            assert proc.stdin is not None
            proc.stdin.write(b"/quota\n")
            await proc.stdin.drain()
            await read_until(proc, r"^Today: ", seen)  # up and answering
        code, out = await health(config, tmp_path)
        assert code == 0, out
        assert f"`chat` (pid {chat.pid} on" in out and f"`run` (pid {run.pid} on" in out, out

        # `run` ends (end of its input): it removes its own heartbeat only.
        run.stdin.close()
        assert await finish(run, run_seen) == 0
        code, out = await health(config, tmp_path)
        assert code == 0, out
        assert f"`chat` (pid {chat.pid} on" in out and "`run`" not in out, out

        chat.stdin.close()
        assert await finish(chat, chat_seen) == 0
        code, out = await health(config, tmp_path)
        assert code == 1 and "no `ltx-bot run` or `ltx-bot chat` is running" in out, out
    finally:
        await stop(chat)
        await stop(run)
    assert not list((tmp_path / "heartbeats").iterdir())

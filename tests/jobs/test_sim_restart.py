"""The built-in simulator across restarts of the bot: its queue and results are kept in
`data_dir/sim`, so unfinished jobs resume, and follow-ups of a finished job find its
video on the simulator's new address. A result that is really gone is refused alike
by every follow-up (re-roll, extend, continue), with nothing charged.

The first test runs `ltx-bot chat` as processes and kills the first one mid-job (as
tests/jobs/test_restart.py does with the runner); the others restart the App in
this process on the same data directory.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.app import App
from bot.config import Settings
from bot.model import JobState
from bot.ports import Attachment, Invocation, Place, User
from tests.conftest import make_settings
from tests.console.helpers import BIN, clean_env, decoded_frames, saved_videos, write_config
from tests.fakes.chat import FakeChat

BOUND = 90.0  # an upper bound for a step, never an expectation of speed
ALICE = User(platform="console", id="alice", name="Alice")
ROOM = Place(platform="console", channel="general", workspace="local")


# ---------------------------------------------------------------- processes


async def _spawn(config: Path, cwd: Path, *, stdin: bool) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(BIN), "chat", "--config", str(config), "--user", "ann", cwd=cwd, env=clean_env(),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def _read_until(proc: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(BOUND):
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                raise AssertionError(f"output ended before {pattern!r}:\n" + "".join(seen))
            seen.append(raw.decode())
            if re.search(pattern, seen[-1]):
                return


async def test_a_killed_bot_s_job_resumes_on_the_next_start_and_is_delivered(
    tmp_path: Path,
) -> None:
    # No allow_hosts: the simulator's own address is trusted as the backend's.
    config = write_config(tmp_path, backend={"kind": "sim", "sim_run_seconds": 3.0},
                          media={"allow_hosts": []})
    first = await _spawn(config, tmp_path, stdin=True)
    seen: list[str] = []
    try:
        assert first.stdin is not None
        first.stdin.write(b"/video a slow boat --seconds 1\n")
        await first.stdin.drain()
        await _read_until(first, r"Job #1 .*Generating", seen)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert "saved: " not in "".join(seen)
    # The request is on disk, unfinished, one file of its own.
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "sim" / "requests").iterdir()]
    assert record["state"] != "COMPLETED"

    # The restart reads no commands: it resumes job 1, waits for it, and delivers it.
    second = await _spawn(config, tmp_path, stdin=False)
    try:
        assert second.stdout is not None
        async with asyncio.timeout(BOUND):
            out = (await second.stdout.read()).decode()
            assert await second.wait() == 0, out
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert "expired" not in out, out
    saved = saved_videos(out, tmp_path)
    assert list(saved) == [1], out
    assert decoded_frames(saved[1]) > 0


# ---------------------------------------------------------------- follow-ups in process


def _settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, media={"allow_hosts": []})


def _inv(command: str, text: str = "", **kw: Any) -> Invocation:
    return Invocation(user=ALICE, place=ROOM, command=command, text=text, **kw)


def _press(action: str, job_id: int, text: str = "") -> Invocation:
    return _inv("action", text, options={"action": action, "job_id": job_id})


async def _started(settings: Settings) -> tuple[App, FakeChat]:
    app = App(settings)
    chat = FakeChat("console")
    app.register_port(chat)
    await app.start()
    return app, chat


@pytest.fixture
async def finished_job(tmp_path: Path) -> str:
    """Job 1, an image-to-video job made and delivered by a bot that has stopped since;
    returns the simulator address it was made on."""
    picture = tmp_path / "fox.png"
    Image.new("RGB", (320, 240), (200, 120, 40)).save(picture)
    app, _chat = await _started(_settings(tmp_path))
    try:
        attached = Attachment(url=str(picture), filename="fox.png", kind="image")
        await app.bot.handle(_inv("video", "a fox --seconds 1", attachments=[attached]), _chat)
        assert (await app.runner.wait(1)).state is JobState.DONE
        assert app.sim is not None
        return app.sim.url
    finally:
        await app.stop()


async def test_follow_ups_after_a_restart_use_the_simulator_s_new_address(
    tmp_path: Path, finished_job: str
) -> None:
    app, chat = await _started(_settings(tmp_path))
    try:
        assert app.sim is not None and app.sim.url != finished_job
        await app.bot.handle(_press("extend", 1, "the fox runs on"), chat)
        extend = await app.runner.wait(2)
        assert extend.state is JobState.DONE, extend.error_message
        # The parent's video, on the address the simulator has now (the old one is dead).
        assert extend.input["video_url"].startswith(f"{app.sim.url}/files/")
        await app.bot.handle(_press("continue", 1), chat)
        assert (await app.runner.wait(3)).state is JobState.DONE
        await app.bot.handle(_press("reroll", 1), chat)
        assert (await app.runner.wait(4)).state is JobState.DONE
        assert len(chat.of_kind("send_video")) == 3
    finally:
        await app.stop()


async def test_every_follow_up_of_a_gone_result_is_refused_alike_and_charges_nothing(
    tmp_path: Path, finished_job: str
) -> None:
    # Past the simulator's keeping (or its folder wiped): the files are gone.
    for stored in (tmp_path / "sim" / "files").iterdir():
        stored.unlink()
    app, chat = await _started(_settings(tmp_path))
    try:
        ledger = await app.store.ledger_rows()
        for action, what in (("extend", "video"), ("continue", "video"), ("reroll", "inputs")):
            await app.bot.handle(_press(action, 1, "more"), chat)
            said = [c.text or "" for c in chat.of_kind("tell")][-1]
            assert f"The {what} of job #1 can't be fetched any more" in said, (action, said)
            assert "started nothing and charged nothing" in said, said
            assert "private network" not in said and "That link" not in said
        assert len(await app.store.list_jobs(ALICE.key)) == 1
        assert await app.store.ledger_rows() == ledger
    finally:
        await app.stop()


async def test_a_job_stopped_while_delivering_is_delivered_from_the_new_address(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    app, chat = await _started(settings)
    parked = asyncio.Event()

    async def park(_job: Any) -> None:
        parked.set()
        await asyncio.Event().wait()  # until the bot stops

    app.runner.hooks.before_delivery = park
    try:
        await app.bot.handle(_inv("video", "a fox --seconds 1"), chat)
        async with asyncio.timeout(BOUND):
            await parked.wait()
        stopped = await app.store.get_job(1)
        assert stopped is not None and stopped.state is JobState.DELIVERING
        assert app.sim is not None and (stopped.result_url or "").startswith(app.sim.url)
    finally:
        await app.stop()

    app, chat = await _started(settings)
    try:
        job = await app.runner.wait(1)
        assert job.state is JobState.DONE, job.error_message
        assert len(chat.of_kind("send_video")) == 1
        # The record now names the video where it is now.
        assert app.sim is not None and (job.result_url or "").startswith(f"{app.sim.url}/files/")
    finally:
        await app.stop()

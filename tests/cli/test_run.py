"""`ltx-bot run` and `chat` as processes: platforms from credentials, SIGTERM, resume.

The platforms are the adapters' own fakes (real HTTP servers on 127.0.0.1);
fal is the simulator, standalone (`ltx-bot sim`) where a restart of the bot
must find its request again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.console.helpers import (
    BIN,
    clean_env,
    decoded_frames,
    expected_frames,
    saved_videos,
    write_config,
)
from tests.discord.fake_api import FakeDiscord
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import CHANNEL, slash_command

BOUND = 60.0  # an upper bound for a step, never an expectation of speed
# What discord.py, slack-bolt and aiohttp used to print at every start (voice is not used; the
# token is given once; sessions are closed), which buried the lines an operator needs.
NOISE = ("PyNaCl", "davey", "voice will NOT be supported", "`token` will be unused",
         "Unclosed client session", "Unclosed connector")


async def spawn(args: list[str], *, cwd: Path, env: dict[str, str],
                stdin: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(BIN), *args, cwd=cwd, env=env,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=(cwd / f"{args[0]}.stderr").open("ab"),
    )


async def read_until(proc: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(BOUND):
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                raise AssertionError(f"output ended before {pattern!r}:\n" + "".join(seen))
            line = raw.decode()
            seen.append(line)
            if re.search(pattern, line):
                return line


async def finish(proc: asyncio.subprocess.Process, seen: list[str]) -> int:
    assert proc.stdout is not None
    async with asyncio.timeout(BOUND):
        seen.append((await proc.stdout.read()).decode())
        return await proc.wait()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


@pytest.fixture
async def fal_sim(tmp_path: Path) -> AsyncIterator[str]:
    """A standalone simulator process; it outlives the bot's restarts."""
    proc = await spawn(["sim", "--port", "0", "--queue-seconds", "0", "--run-seconds", "3",
                        "--concurrency", "2"], cwd=tmp_path, env=clean_env())
    try:
        line = await read_until(proc, r"fal simulator on http://127\.0\.0\.1:\d+", [])
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match
        yield match.group(0)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BOUND):
                    await proc.wait()
        await stop(proc)


async def test_sigterm_mid_job_then_restart_delivers(tmp_path: Path, fal_sim: str) -> None:
    config = write_config(
        tmp_path,
        backend={"kind": "fal", "fal_key": "test-key", "fal_queue_url": fal_sim, "fal_rest_url": fal_sim},
        media={"allow_hosts": ["127.0.0.1"]},
    )
    prompt = "a slow boat --seconds 1"
    first = await spawn(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                        env=clean_env(), stdin=True)
    seen: list[str] = []
    try:
        assert first.stdin is not None
        first.stdin.write(f"{prompt}\n".encode())
        await first.stdin.drain()
        await read_until(first, r"Job #1 .*Generating", seen)
        first.send_signal(signal.SIGTERM)
        assert await finish(first, seen) == 0
    finally:
        await stop(first)
    assert "saved: " not in "".join(seen)

    # The restart reads no commands: it resumes job 1, waits for it, and delivers it.
    second = await spawn(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                         env=clean_env())
    later: list[str] = []
    try:
        assert await finish(second, later) == 0
    finally:
        await stop(second)
    output = "".join(later)
    saved = saved_videos(output, tmp_path)
    assert list(saved) == [1], output
    assert decoded_frames(saved[1]) == expected_frames(prompt, config)
    # Followed at fal where it was, not sent again (that would be paid twice).
    assert "Sending to fal" not in output
    stderr = (tmp_path / "chat.stderr").read_text()
    assert "Traceback" not in stderr
    # The chat's log goes to its file (only warnings reach the terminal).
    assert "SIGTERM received" in (tmp_path / "logs" / "ltx-bot.log").read_text()


async def test_run_starts_slack_and_serves_a_command(tmp_path: Path) -> None:
    fake = FakeSlack()
    await fake.start()
    config = write_config(tmp_path, slack={"mode": "socket"})
    env = clean_env(SLACK_BOT_TOKEN=fake.bot_token, SLACK_APP_TOKEN=fake.app_token,
                    LTX_BOT__SLACK__API_URL=fake.api_url)
    proc = await spawn(["run", "--config", str(config)], cwd=tmp_path, env=env)
    try:
        await fake.wait_for(lambda: fake.named("apps.connections.open"), limit=BOUND)
        await fake.push_envelope({"envelope_id": "e1", "type": "slash_commands",
                                  "payload": slash_command("a red kite --seconds 1"),
                                  "accepts_response_payload": True})
        await fake.wait_for(lambda: fake.named("files.completeUploadExternal"), limit=BOUND)
        proc.send_signal(signal.SIGTERM)
        assert await finish(proc, []) == 0
    finally:
        await stop(proc)
        await fake.stop()
    stderr = (tmp_path / "run.stderr").read_text()
    assert "Starting the slack adapter" in stderr and "Traceback" not in stderr
    for secret in (fake.bot_token, fake.app_token):
        assert secret not in stderr
    assert [f for f in fake.files.values() if f.name.endswith(".mp4") and f.completed]


async def test_run_starts_discord_when_a_token_is_set(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    token = "discord-test-token-abc123"
    config = write_config(tmp_path)
    # Both URLs: api_url moves REST only; without gateway_url discord.py would look for
    # wss://gateway.discord.gg (the child's loopback guard refuses that).
    env = clean_env(DISCORD_TOKEN=token, LTX_BOT__DISCORD__API_URL=fake.url,
                    LTX_BOT__DISCORD__GATEWAY_URL=fake.gateway_url)
    proc = await spawn(["run", "--config", str(config)], cwd=tmp_path, env=env)
    try:
        me = await fake.wait_for(lambda c: c.method == "GET" and c.path.endswith("/users/@me"),
                                 limit=BOUND, what="login")
        assert me.bot_auth
        # Logged in, the slash commands synced and the gateway identified: the adapter is up.
        await fake.wait_for(lambda c: c.method == "PUT" and c.path.endswith("/commands"),
                            limit=BOUND, what="command sync")
        await fake.wait_until(lambda: bool(fake.identified), limit=BOUND, what="gateway IDENTIFY")
        assert fake.identified[0]["token_sent"]
        proc.send_signal(signal.SIGTERM)
        assert await finish(proc, []) == 0
    finally:
        await stop(proc)
        await fake.stop()
    stderr = (tmp_path / "run.stderr").read_text()
    assert "Starting the discord adapter" in stderr
    assert token not in stderr
    assert "Traceback" not in stderr and "tests stay on loopback" not in stderr


async def test_run_starts_discord_and_slack_in_one_process(tmp_path: Path) -> None:
    discord_fake, slack_fake = FakeDiscord(), FakeSlack()
    token = "discord-test-token-both-456"
    async with contextlib.AsyncExitStack() as fakes:
        await discord_fake.start()
        fakes.push_async_callback(discord_fake.stop)
        await slack_fake.start()
        fakes.push_async_callback(slack_fake.stop)
        config = write_config(tmp_path, slack={"mode": "socket"})
        env = clean_env(DISCORD_TOKEN=token, LTX_BOT__DISCORD__API_URL=discord_fake.url,
                        LTX_BOT__DISCORD__GATEWAY_URL=discord_fake.gateway_url,
                        SLACK_BOT_TOKEN=slack_fake.bot_token, SLACK_APP_TOKEN=slack_fake.app_token,
                        LTX_BOT__SLACK__API_URL=slack_fake.api_url)
        proc = await spawn(["run", "--config", str(config)], cwd=tmp_path, env=env)
        try:
            # Discord: commands synced and the gateway identified.
            await discord_fake.wait_for(lambda c: c.method == "PUT" and c.path.endswith("/commands"),
                                        limit=BOUND, what="command sync")
            await discord_fake.wait_until(lambda: bool(discord_fake.identified), limit=BOUND,
                                          what="gateway IDENTIFY")
            assert discord_fake.identified[0]["token_sent"]
            # Slack: the socket is open and a slash command is acknowledged on it...
            await slack_fake.wait_for(lambda: slack_fake.named("apps.connections.open"), limit=BOUND)
            await slack_fake.push_envelope({"envelope_id": "both-1", "type": "slash_commands",
                                            "payload": slash_command("a green kite --seconds 1"),
                                            "accepts_response_payload": True})
            await slack_fake.wait_for(
                lambda: [a for a in slack_fake.socket_acks if a.get("envelope_id") == "both-1"],
                limit=BOUND)
            # ...and ends with the video uploaded to the channel it came from.
            uploaded = await slack_fake.wait_for(
                lambda: [f for f in slack_fake.files.values()
                         if f.name.endswith(".mp4") and f.completed and f.data],
                limit=BOUND)
            proc.send_signal(signal.SIGTERM)
            assert await finish(proc, []) == 0
        finally:
            await stop(proc)
    assert [f.channel for f in uploaded] == [CHANNEL]
    assert not discord_fake.messages  # the Slack job was delivered to Slack only
    stderr = (tmp_path / "run.stderr").read_text()
    assert "Starting the discord adapter" in stderr and "Starting the slack adapter" in stderr
    assert "ltx-bot is running (discord, slack)" in stderr
    assert "Traceback" not in stderr and "tests stay on loopback" not in stderr
    assert [n for n in NOISE if n in stderr] == [], stderr
    for secret in (token, slack_fake.bot_token, slack_fake.app_token):
        assert secret not in stderr


async def test_a_discord_token_refused_at_start_is_one_line(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    fake.fail_next("GET", "/users/@me", 401, code=0)  # Discord's answer to a wrong token
    env = clean_env(DISCORD_TOKEN="discord-wrong-token-789", LTX_BOT__DISCORD__API_URL=fake.url,
                    LTX_BOT__DISCORD__GATEWAY_URL=fake.gateway_url)
    proc = await spawn(["run", "--config", str(write_config(tmp_path))], cwd=tmp_path, env=env)
    try:
        assert await finish(proc, []) == 1
    finally:
        await stop(proc)
        await fake.stop()
    assert_one_failure_line(tmp_path / "run.stderr", "discord-wrong-token-789")


async def test_a_slack_token_refused_at_start_is_one_line(tmp_path: Path) -> None:
    fake = FakeSlack()
    await fake.start()
    env = clean_env(SLACK_BOT_TOKEN="xoxb-wrong-token-789", SLACK_APP_TOKEN=fake.app_token,
                    LTX_BOT__SLACK__API_URL=fake.api_url)
    proc = await spawn(["run", "--config", str(write_config(tmp_path, slack={"mode": "socket"}))],
                       cwd=tmp_path, env=env)
    try:
        assert await finish(proc, []) == 1
    finally:
        await stop(proc)
        await fake.stop()
    stderr = assert_one_failure_line(tmp_path / "run.stderr", "xoxb-wrong-token-789")
    assert "Slack refused the bot token (SLACK_BOT_TOKEN): invalid_auth" in stderr


def assert_one_failure_line(path: Path, secret: str) -> str:
    stderr = path.read_text()
    failed = [line for line in stderr.splitlines() if "ltx-bot run failed: " in line]
    assert len(failed) == 1, stderr
    assert "Traceback" not in stderr and secret not in stderr
    assert [n for n in NOISE if n in stderr] == [], stderr
    return stderr


# The child refuses to try at all unless the guard is in place, so this test itself can
# never reach beyond loopback, whatever state the guard is in.
GUARD_CHILD = """
import asyncio, socket, sys
if socket.socket.connect.__name__ != "_guarded_connect":
    print("unguarded"); sys.exit(3)
out = []
for call in ("connect", "connect_ex"):
    s = socket.socket()
    try:
        getattr(s, call)(("93.184.216.34", 80))
        out.append(call + ": reached")
    except ConnectionRefusedError as exc:
        out.append(call + ": " + str(exc))
    finally:
        s.close()
async def via_asyncio():
    try:
        await asyncio.open_connection("93.184.216.34", 80)
        return "asyncio: reached"
    except OSError as exc:
        return "asyncio: " + str(exc)
out.append(asyncio.run(via_asyncio()))
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
out.append("loopback: ok")
client.close(); server.close()
print("\\n".join(out))
"""


async def test_child_processes_are_refused_beyond_loopback(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", GUARD_CHILD, cwd=tmp_path, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(BOUND):
        output = (await proc.stdout.read()).decode() if proc.stdout else ""
        assert await proc.wait() == 0, output
    lines = output.splitlines()
    assert len(lines) == 4, output
    for line in lines[:3]:
        assert "93.184.216.34" in line and "tests stay on loopback" in line, output
    assert lines[3] == "loopback: ok"

"""A backend the operator runs on this machine (`ltx-bot sim`, say) works as its line
says: a loopback `fal_queue_url` is chosen without a key, its results are fetched
though they are on loopback, and a result link the guard refuses is the backend's
problem in the words the user reads, never "your link".
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot import media
from bot.cli import check_config, plan
from bot.config import MediaSettings, Settings
from bot.sim import Simulator
from tests.console.helpers import BIN, clean_env, saved_videos, toml_value
from tests.fal.conftest import make_client

BOUND = 60.0  # an upper bound for a step, never an expectation of speed


# ---------------------------------------------------------------- which backend runs


def _settings(**backend: object) -> Settings:
    return Settings.model_validate({"backend": backend})


def test_auto_picks_a_loopback_server_without_a_key() -> None:
    assert _settings().uses_simulator  # nothing configured: the built-in simulator
    for url in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        local = _settings(fal_queue_url=url, fal_rest_url=url)
        assert not local.uses_simulator, url
        assert plan(local)[2] == []  # no key needed: no problem
    # Anywhere else, no key still means the built-in simulator (fal would refuse us).
    assert _settings(fal_queue_url="https://fal-proxy.example.com").uses_simulator
    # kind = "fal" on loopback needs no key either; on fal's own address it does.
    assert plan(_settings(kind="fal", fal_queue_url="http://127.0.0.1:1"))[2] == []
    assert plan(_settings(kind="fal"))[2] != []
    assert _settings(kind="sim", fal_queue_url="http://127.0.0.1:1").uses_simulator


def test_check_config_names_the_local_server() -> None:
    out = io.StringIO()
    url = "http://127.0.0.1:8765"
    assert check_config(_settings(fal_queue_url=url, fal_rest_url=url), None, as_json=False,
                        out=out) == 0
    text = out.getvalue()
    assert f"backend: the fal-compatible server at {url}" in text
    assert "no fal key is needed" in text and "SIMULATED" not in text


# ---------------------------------------------------------------- fetching its files


@pytest.fixture
async def stored(sim: Simulator, http: httpx.AsyncClient, tmp_path: Path) -> str:
    """The URL of a file the backend stored (what a result's video URL is)."""
    path = tmp_path / "made.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    return await make_client(http, sim.url).upload(path, content_type="video/mp4",
                                                     filename="made.mp4")


def _fetcher(http: httpx.AsyncClient, *backend_urls: str) -> media.Fetcher:
    return media.Fetcher(http, MediaSettings(), media.backend_hosts(backend_urls))


async def test_the_configured_backend_s_files_are_fetched(
    sim: Simulator, http: httpx.AsyncClient, stored: str, tmp_path: Path
) -> None:
    port = sim.url.rsplit(":", 1)[1]
    # Under any of its loopback names: the server may make URLs under another than ours.
    for configured in (sim.url, f"http://localhost:{port}"):
        got = await _fetcher(http, configured).fetch_result(stored, tmp_path / "r.mp4",
                                                            max_bytes=10_000)
        assert got.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    # Only that server: another port on loopback stays refused, and fal's own public
    # addresses are left to the ordinary checks.
    assert media.backend_hosts([sim.url]) == (
        f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}")
    assert media.backend_hosts(["https://queue.fal.run"],
                               except_urls=["https://queue.fal.run"]) == ()


async def test_a_refused_backend_link_is_the_backend_s_problem(
    sim: Simulator, http: httpx.AsyncClient, stored: str, tmp_path: Path
) -> None:
    with pytest.raises(media.BackendFileError) as refused:
        await _fetcher(http, "http://127.0.0.1:1").fetch_result(
            stored, tmp_path / "r.mp4", max_bytes=10_000)
    said = str(refused.value)
    assert "That link" not in said and "video backend" in said
    assert "private network address (127.0.0.1)" in said and not refused.value.gone
    # A user's link to the same address is still refused as theirs.
    with pytest.raises(media.guard.PrivateAddress):
        await _fetcher(http).download(stored, tmp_path / "u.mp4", max_bytes=10_000)
    with pytest.raises(media.BackendFileError) as gone:
        await _fetcher(http, sim.url).fetch_result(
            stored.replace("/files/", "/files/0"), tmp_path / "g.mp4", max_bytes=10_000)
    assert gone.value.gone and "no longer has that file" in str(gone.value)


# ---------------------------------------------------------------- the printed line


@contextlib.asynccontextmanager
async def standalone_sim(cwd: Path) -> AsyncIterator[list[str]]:
    """`ltx-bot sim` as a process; yields the lines it printed about how to use it."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN), "sim", "--port", "0", "--queue-seconds", "0", "--run-seconds", "0.3",
        cwd=cwd, env=clean_env(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=(cwd / "sim.stderr").open("ab"),
    )
    printed: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(BOUND):
            while not printed or not printed[-1].startswith("or set "):
                line = (await proc.stdout.readline()).decode()
                assert line, "ltx-bot sim ended:\n" + "".join(printed)
                printed.append(line)
        yield printed
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BOUND):
                    await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _printed_settings(printed: list[str]) -> str:
    """The TOML lines the simulator printed, exactly: from `[backend]` to the blank line."""
    start = next(i for i, line in enumerate(printed) if line.strip() == "[backend]")
    end = next(i for i in range(start, len(printed)) if not printed[i].strip())
    return "".join(printed[start:end])


async def _chat(config: Path, cwd: Path, line: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN), "chat", "--config", str(config), "--user", "ann", cwd=cwd,
        env=clean_env(**env), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(BOUND):
            out, _ = await proc.communicate(f"{line}\n".encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_line_ltx_bot_sim_prints_works_as_printed(tmp_path: Path) -> None:
    async with standalone_sim(tmp_path) as printed:
        url = re.search(r"fal simulator on (http://127\.0\.0\.1:\d+)", printed[0])
        assert url, printed
        given = _printed_settings(printed)
        assert given == (f'[backend]\nfal_queue_url = "{url.group(1)}"\n'
                         f'fal_rest_url = "{url.group(1)}"\n')
        config = tmp_path / "config.toml"
        config.write_text(
            f"[database]\npath = {toml_value(str(tmp_path / 'bot.sqlite3'))}\n"
            f"[media]\noutput_dir = {toml_value(str(tmp_path / 'outputs'))}\n"
            f"tmp_dir = {toml_value(str(tmp_path / 'tmp'))}\n"
            "[quota]\ncooldown_seconds = 0\n"
            + given
        )
        # Without a key, and with a key fal would refuse: both go to the server printed.
        for env in ({}, {"FAL_KEY": "dummy-key-for-a-local-server"}):
            code, out = await _chat(config, tmp_path, "/video a boat --seconds 1", **env)
            assert code == 0, out
            assert "private network" not in out and "SIMULATED" not in out, out
            assert len(saved_videos(out, tmp_path)) == 1, out

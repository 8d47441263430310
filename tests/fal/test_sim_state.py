"""The simulator's state directory: requests and files outlive a stop, and several
simulators share one directory without clashing.

Each test runs real simulators on 127.0.0.1 and speaks fal's protocol to them with
the bot's own client; "a restart" is a stopped simulator and a new one (on another
port) on the same directory.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import httpx
import pytest

from bot.errors import ResultExpired
from bot.fal import Completed, FalClient, Queued
from bot.sim import Simulator
from bot.sim.state import SimState
from tests.fal.conftest import fast_options, make_client
from tests.fal.helpers import download, follow, probe

T2V = "fal-ai/ltx-video-13b-distilled/multiconditioning"  # short clips: quick tests


def _sim(state: Path, **changes: object) -> Simulator:
    return Simulator(fast_options(state_dir=state, **changes))


async def test_a_finished_result_is_served_after_a_restart_on_the_new_address(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with _sim(tmp_path) as first:
        fal = make_client(http, first.url)
        handle = await fal.enqueue(T2V, {"prompt": "kept", "seed": 3, "number_of_frames": 9})
        await follow(fal, handle)
        before = await fal.result(handle)
        video = await download(http, before["video"]["url"])
    async with _sim(tmp_path) as second:
        assert second.url != first.url
        fal = make_client(http, second.url)
        again = fal.handle_for(T2V, handle.request_id)
        assert isinstance((await follow(fal, again))[-1], Completed)
        after = await fal.result(again)
        # The same video, under the address the simulator has now.
        assert after["video"]["url"].startswith(f"{second.url}/files/")
        assert await download(http, after["video"]["url"]) == video
        # An earlier run's URL of one of its files is moved to the new address.
        assert second.local_url(before["video"]["url"]) == after["video"]["url"]
        # One whose file is gone since is moved too, to be a plain 404 here...
        gone = second.local_url(f"{first.url}/files/{'0' * 32}/x.mp4")
        assert gone == f"{second.url}/files/{'0' * 32}/x.mp4"
        assert (await http.get(gone)).status_code == 404
        # ...but nobody else's URL is.
        assert second.local_url(f"http://127.0.0.1:1/files/{'0' * 32}/x.mp4") is None


async def test_an_unfinished_request_runs_on_after_a_restart(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    first = _sim(tmp_path, run_seconds=60.0, concurrency=1)
    await first.start()
    try:
        fal = make_client(http, first.url)
        running = await fal.enqueue(T2V, {"prompt": "running", "number_of_frames": 9})
        queued = await fal.enqueue(T2V, {"prompt": "queued", "number_of_frames": 9})
        await first.wait_state(running.request_id, "IN_PROGRESS")
        assert await fal.status(queued) == Queued(position=0)
    finally:
        await first.stop()
    # Stopped mid-run: nothing was lost on disk.
    async with _sim(tmp_path, run_seconds=0.05) as second:
        # Picked up at the start, before any client asks.
        assert {second.job_state(r.request_id) for r in (running, queued)} <= {
            "IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
        fal = make_client(http, second.url)
        for handle in (running, queued):
            again = fal.handle_for(T2V, handle.request_id)
            assert isinstance((await follow(fal, again))[-1], Completed)
            result = await fal.result(again)
            assert probe(await download(http, result["video"]["url"])).frames == 9


async def test_an_uploaded_input_is_read_after_a_restart(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    from PIL import Image

    picture = tmp_path / "green.png"
    Image.new("RGB", (96, 64), (20, 210, 40)).save(picture)
    async with _sim(tmp_path / "state") as first:
        url = await make_client(http, first.url).upload(picture, content_type="image/png",
                                                          filename="green.png")
    async with _sim(tmp_path / "state") as second:
        # The input URL names the old port; the file is still this directory's.
        fal = make_client(http, second.url)
        handle = await fal.enqueue(T2V, {"prompt": "green", "number_of_frames": 9,
                                         "images": [{"image_url": url}]})
        await follow(fal, handle)
        facts = probe(await download(http, (await fal.result(handle))["video"]["url"]))
        red, green, blue = facts.first_rgb
        assert green > 150 and red < 90 and blue < 90, facts.first_rgb


async def test_two_simulators_on_one_directory_serve_each_other_s_requests(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with _sim(tmp_path, run_seconds=0.6, steps=6) as owner, _sim(tmp_path) as other:
        at_owner = make_client(http, owner.url)
        at_other = make_client(http, other.url)
        handle = await at_owner.enqueue(T2V, {"prompt": "one for both", "number_of_frames": 9})
        # Asked of the other simulator, the request is followed there, not run twice.
        seen = await follow(at_other, at_other.handle_for(T2V, handle.request_id))
        assert isinstance(seen[-1], Completed)
        assert other.requests_by_kind["submit"] == 0 and not other.completed_at
        result = await at_other.result(at_other.handle_for(T2V, handle.request_id))
        assert result["video"]["url"].startswith(other.url)
        # A cancel asked of the other one reaches the owner.
        owner.options.run_seconds = 60.0
        slow = await at_owner.enqueue(T2V, {"prompt": "slow", "number_of_frames": 9})
        await owner.wait_state(slow.request_id, "IN_PROGRESS")
        await at_other.status(at_other.handle_for(T2V, slow.request_id))
        assert await at_other.cancel(at_other.handle_for(T2V, slow.request_id)) in (
            "CANCELLATION_REQUESTED", "OK")
        await owner.wait_state(slow.request_id, "COMPLETED")
        status = (await http.get(f"{owner.url}/fal-ai/ltx-video-13b-distilled/requests/{slow.request_id}/status")).json()
        assert status["error_type"] == "request_cancelled"
    # One file per request, each whole: no temporary file is left behind.
    records = list((tmp_path / "requests").iterdir())
    assert sorted(p.suffix for p in records) == [".json", ".json"]
    assert all(json.loads(p.read_text())["state"] == "COMPLETED" for p in records)


async def test_a_request_of_a_dead_simulator_is_adopted(tmp_path: Path, http: httpx.AsyncClient) -> None:
    """An owner whose process is gone (killed, not stopped) leaves its heartbeat behind."""
    state = SimState(tmp_path)
    state.open()
    record = {"id": "5b1c4f0e-0000-4000-8000-000000000001", "endpoint_id": T2V,
              "payload": {"prompt": "orphan", "number_of_frames": 9}, "seed": 1, "priority": "normal",
              "submitted": 0.0, "state": "IN_PROGRESS", "owner": state.owner, "origin": ""}
    state.save(record)
    # The heartbeat names a process that no longer exists.
    (tmp_path / "owners" / f"{state.owner}.json").write_text(
        json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    async with _sim(tmp_path) as sim:
        fal = make_client(http, sim.url)
        handle = fal.handle_for(T2V, record["id"])
        assert isinstance((await follow(fal, handle))[-1], Completed)


async def test_an_expired_result_is_gone_after_a_restart_too(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with _sim(tmp_path, result_ttl_seconds=0.0) as first:
        fal = make_client(http, first.url)
        handle = await fal.enqueue(T2V, {"prompt": "brief", "number_of_frames": 9})
        await follow(fal, handle)
    async with _sim(tmp_path, result_ttl_seconds=0.0) as second:
        fal = make_client(http, second.url)
        with pytest.raises(ResultExpired):
            await fal.result(fal.handle_for(T2V, handle.request_id))


async def test_without_a_state_directory_nothing_is_kept(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options()) as first:
        fal: FalClient = make_client(http, first.url)
        handle = await fal.enqueue(T2V, {"prompt": "gone", "number_of_frames": 9})
        await follow(fal, handle)
    async with Simulator(fast_options()) as second:
        fal = make_client(http, second.url)
        with pytest.raises(ResultExpired):
            await fal.status(fal.handle_for(T2V, handle.request_id))


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1

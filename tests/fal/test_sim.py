"""The simulator's protocol, rendering and command line, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bot.errors import ResultExpired
from bot.fal import Completed, Failed, FalClient, Queued
from bot.sim import Simulator
from bot.sim.render import RenderSpec, render_video, scaled_size
from bot.sim.server import build_parser, options_from_args
from tests.fal.conftest import fast_options, make_client
from tests.fal.helpers import download, follow, probe
from tests.guard import with_loopback_guard

REPO = Path(__file__).parents[2]


def _data_uri(color: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), color).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def _submit(http: httpx.AsyncClient, sim: Simulator, endpoint_id: str,
                  payload: dict[str, object], **headers: str) -> dict[str, object]:
    response = await http.post(f"{sim.url}/{endpoint_id}", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def test_submit_reply_has_fal_shape(sim: Simulator, http: httpx.AsyncClient) -> None:
    reply = await _submit(http, sim, "fal-ai/ltx-video/image-to-video",
                          {"prompt": "x", "image_url": "https://example.com/i.png"})
    rid = reply["request_id"]
    assert reply["status"] == "IN_QUEUE" and isinstance(reply["queue_position"], int)
    base = f"{sim.url}/fal-ai/ltx-video/requests/{rid}"
    assert (reply["response_url"], reply["status_url"], reply["cancel_url"]) == (
        base, f"{base}/status", f"{base}/cancel")
    # The full endpoint path is not where the request lives (fal uses owner/app only).
    wrong = await http.get(f"{sim.url}/fal-ai/ltx-video/image-to-video/requests/{rid}/status")
    assert wrong.status_code == 404
    other_app = await http.get(f"{sim.url}/fal-ai/ltx-2-19b/requests/{rid}/status")
    assert other_app.status_code == 404


async def test_unknown_endpoint_and_bad_bodies(sim: Simulator, http: httpx.AsyncClient) -> None:
    assert (await http.post(f"{sim.url}/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 404
    bad = await http.post(f"{sim.url}/fal-ai/ltx-video", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body"]
    extra = await http.post(f"{sim.url}/fal-ai/ltx-video", json={"prompt": "x", "nope": 1})
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "nope"]


async def test_status_codes_and_logs_flag(sim: Simulator, http: httpx.AsyncClient) -> None:
    reply = await _submit(http, sim, "fal-ai/ltx-video", {"prompt": "x"})
    status_url = str(reply["status_url"])
    await sim.wait_state(str(reply["request_id"]), "COMPLETED")
    plain = await http.get(status_url)
    assert plain.status_code == 200 and plain.json()["logs"] is None
    assert plain.json()["metrics"]["inference_time"] > 0
    for flag in ("1", "true"):
        with_logs = await http.get(status_url, params={"logs": flag})
        messages = [line["message"] for line in with_logs.json()["logs"]]
        assert "Step 4/4 (100%)" in messages
        assert {"message", "level", "source", "timestamp"} <= set(with_logs.json()["logs"][0])


async def test_status_is_202_until_done(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(run_seconds=30.0, concurrency=1)) as sim:
        reply = await _submit(http, sim, "fal-ai/ltx-video", {"prompt": "x"})
        await sim.wait_state(str(reply["request_id"]), "IN_PROGRESS")
        response = await http.get(str(reply["status_url"]), params={"logs": "1"})
        assert response.status_code == 202 and response.json()["status"] == "IN_PROGRESS"
        early = await http.get(str(reply["response_url"]))
        assert early.status_code == 400


async def test_stream_sends_changes_keepalives_and_closes(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(run_seconds=0.3, steps=3, keepalive_seconds=0.03,
                                      concurrency=1)) as sim:
        first = await _submit(http, sim, "fal-ai/ltx-video", {"prompt": "a"})
        second = await _submit(http, sim, "fal-ai/ltx-video", {"prompt": "b"})
        statuses: list[dict[str, object]] = []
        comments = 0
        async with http.stream("GET", f"{second['status_url']}/stream",
                               params={"logs": "1"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    statuses.append(json.loads(line[6:]))
                elif line.startswith(": keep-alive"):
                    comments += 1
        # The body ended by itself, right after the final status.
        assert statuses[-1]["status"] == "COMPLETED"
        assert statuses[0]["status"] == "IN_QUEUE" and statuses[0]["queue_position"] == 0
        kinds = [s["status"] for s in statuses]
        assert kinds.index("IN_PROGRESS") < kinds.index("COMPLETED")
        assert comments >= 1
        assert all(a != b for a, b in itertools.pairwise(statuses))
        assert first["request_id"] in sim.completed_at


async def test_low_priority_waits_behind_normal(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(run_seconds=30.0, concurrency=1)) as sim:
        fal = make_client(http, sim.url)
        busy = await fal.enqueue("fal-ai/ltx-video", {"prompt": "busy"})
        await sim.wait_state(busy.request_id, "IN_PROGRESS")
        low = await fal.enqueue("fal-ai/ltx-video", {"prompt": "low"}, priority="low")
        normal = await fal.enqueue("fal-ai/ltx-video", {"prompt": "normal"})
        assert await fal.status(normal) == Queued(position=0)
        assert await fal.status(low) == Queued(position=1)


async def test_start_timeout_ends_a_queued_request(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(run_seconds=30.0, concurrency=1)) as sim:
        fal = make_client(http, sim.url)
        busy = await fal.enqueue("fal-ai/ltx-video", {"prompt": "busy"})
        await sim.wait_state(busy.request_id, "IN_PROGRESS")
        late = await fal.enqueue("fal-ai/ltx-video", {"prompt": "late"}, timeout_seconds=0.1)
        final = (await follow(fal, late))[-1]
        assert isinstance(final, Failed) and final.error_type == "request_timeout"


async def test_upload_needs_the_token(sim: Simulator, http: httpx.AsyncClient) -> None:
    refused = await http.post(f"{sim.url}/files/upload", content=b"x",
                              headers={"Authorization": "Key something"})
    assert refused.status_code == 401
    token = (await http.post(f"{sim.url}/storage/auth/token",
                             params={"storage_type": "fal-cdn-v3"}, json={})).json()
    assert set(token) == {"token", "token_type", "base_url", "expires_at"}
    stored = await http.post(f"{token['base_url']}/files/upload", content=b"hello",
                             headers={"Authorization": f"{token['token_type']} {token['token']}",
                                      "Content-Type": "text/plain", "X-Fal-File-Name": "h.txt"})
    url = stored.json()["access_url"]
    assert url.endswith("/h.txt") and await download(http, url) == b"hello"


async def test_rendering_is_deterministic_per_seed(sim: Simulator, http: httpx.AsyncClient) -> None:
    fal = make_client(http, sim.url)
    videos: list[bytes] = []
    for seed in (7, 7, 8):
        handle = await fal.enqueue("fal-ai/ltx-video-13b-distilled/multiconditioning",
                                  {"prompt": "same", "seed": seed, "number_of_frames": 17,
                                   "frame_rate": 8})
        await follow(fal, handle)
        result = await fal.result(handle)
        assert result["seed"] == seed
        videos.append(await download(http, result["video"]["url"]))
    assert videos[0] == videos[1] and videos[0] != videos[2]
    facts = probe(videos[0])
    assert facts.frames == 17 and facts.fps == 8
    assert facts.frame_bytes[0] != facts.frame_bytes[-1]  # the scene moves


async def test_extend_reads_an_uploaded_video(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    first = await fal.enqueue("fal-ai/ltx-2-19b/image-to-video",
                             {"prompt": "green", "image_url": _data_uri((30, 200, 40)),
                              "num_frames": 9, "generate_audio": False})
    await follow(fal, first)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(await download(http, (await fal.result(first))["video"]["url"]))
    url = await fal.upload(clip, content_type="video/mp4", filename="clip.mp4")
    extend = await fal.enqueue("fal-ai/ltx-video-v097/extend",
                              {"prompt": "more", "video": {"video_url": url}})
    assert isinstance((await follow(fal, extend))[-1], Completed)
    facts = probe(await download(http, (await fal.result(extend))["video"]["url"]))
    red, green, blue = facts.first_rgb
    assert green > 150 and red < 90 and blue < 90, facts.first_rgb
    assert facts.frames == 121 and facts.fps == 30


def test_render_sizes_and_audio(tmp_path: Path) -> None:
    assert scaled_size(1280, 720, 0.25) == (320, 180)
    assert scaled_size(100, 100, 0.25) == (64, 64)
    assert scaled_size(1279, 719, 0.1) == (128, 72)
    dest = tmp_path / "v.mp4"
    render_video(RenderSpec(width=64, height=96, frames=25, fps=12.5, seed=1, prompt="hi",
                            audio=True), dest)
    facts = probe(dest.read_bytes())
    assert (facts.width, facts.height, facts.frames) == (64, 96, 25)
    assert facts.fps == 12.5 and facts.audio_codec == "aac"


def test_command_line_options() -> None:
    args = build_parser().parse_args(["--port", "0", "--queue-seconds", "0.5", "--run-seconds",
                                      "2", "--concurrency", "3", "--fail-rate", "0.1",
                                      "--drop-stream-rate", "0.2", "--error-rate", "0.3",
                                      "--state-dir", "sim-state"])
    options = options_from_args(args)
    assert (options.queue_seconds, options.run_seconds, options.concurrency) == (0.5, 2.0, 3)
    assert (options.fail_rate, options.drop_stream_rate, options.error_rate) == (0.1, 0.2, 0.3)
    assert options.state_dir == Path("sim-state")
    assert options_from_args(build_parser().parse_args([])).state_dir is None


async def test_command_line_serves_until_terminated(http: httpx.AsyncClient) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from bot.sim.server import main; sys.exit(main(sys.argv[1:]))",
        "--port", "0", "--run-seconds", "0", "--queue-seconds", "0",
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=with_loopback_guard({**os.environ, "PYTHONPATH": str(REPO)}),
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:")
        reply = await http.post(f"{url}/fal-ai/ltx-video", json={"prompt": "cli"})
        assert reply.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("sim_options", [fast_options(api_key="k1")])
async def test_api_key_is_enforced_when_configured(sim: Simulator, http: httpx.AsyncClient) -> None:
    body = {"prompt": "x"}
    assert (await http.post(f"{sim.url}/fal-ai/ltx-video", json=body)).status_code == 401
    ok = await http.post(f"{sim.url}/fal-ai/ltx-video", json=body,
                         headers={"Authorization": "Key k1"})
    assert ok.status_code == 200


async def test_stop_ends_open_streams(http: httpx.AsyncClient) -> None:
    sim = Simulator(fast_options(run_seconds=30.0))
    await sim.start()
    try:
        reply = await _submit(http, sim, "fal-ai/ltx-video", {"prompt": "x"})
        await sim.wait_state(str(reply["request_id"]), "IN_PROGRESS")
        async with http.stream("GET", f"{reply['status_url']}/stream") as response:
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: ")
            stopping = asyncio.create_task(sim.stop())
            rest = [line async for line in lines]  # a clean end, not a cut connection
            assert not any('"COMPLETED"' in line for line in rest)
            await stopping
    finally:
        await sim.stop()


async def test_forgotten_request_status_is_result_expired(fal: FalClient) -> None:
    with pytest.raises(ResultExpired):
        await fal.status(fal.handle_for("fal-ai/ltx-video", "forgotten"))

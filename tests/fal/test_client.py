"""FalClient over real HTTP against the simulator."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from PIL import Image

from bot.catalog import by_name
from bot.config import BackendSettings
from bot.errors import (
    FalError,
    FalRequestFailed,
    FalTransportError,
    FalValidationError,
    ResultExpired,
    UserError,
)
from bot.fal import (
    Completed,
    Failed,
    FalAccountError,
    FalClient,
    PoolShards,
    Queued,
    Running,
    new_http_client,
)
from bot.sim import Simulator
from tests.fal.conftest import KEY, fast_options, make_client
from tests.fal.helpers import download, follow, probe
from tests.fal.seeds import SEED_FILES, examples
from tests.http_server import serve

# ------------------------------------------------------------------ happy path


@pytest.mark.parametrize("sim_options", [fast_options(scale=0.1)])
async def test_every_endpoint_end_to_end_with_the_docs_examples(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient
) -> None:
    async def one(filename: str) -> None:
        endpoint = by_name(SEED_FILES[filename])
        payload = max(examples(filename)[0], key=len)  # the fullest example of the doc
        handle = await fal.enqueue(endpoint.endpoint_id, payload)
        # Status URLs use owner/app only, as fal builds them.
        assert handle.status_url == f"{sim.url}/{endpoint.app_id}/requests/{handle.request_id}/status"
        events = await follow(fal, handle)
        assert isinstance(events[-1], Completed), events[-1]
        assert events[-1].inference_time is not None
        result = await fal.result(handle)
        output = endpoint.output_model.model_validate(result)
        facts = probe(await download(http, result["video"]["url"]))
        frames = payload.get(endpoint.frames.field) if endpoint.frames else endpoint.fixed_frames
        if endpoint.frames and endpoint.frames.fps_field:
            fps = payload.get(endpoint.frames.fps_field, endpoint.frames.default_fps)
        else:
            fps = endpoint.fixed_fps
        assert facts.frames == frames == result["video"]["num_frames"]
        assert facts.fps == Fraction(fps).limit_denominator(1001)
        assert facts.video_codec == "h264"
        assert facts.audio_codec == ("aac" if endpoint.audio else None)
        assert facts.width % 2 == 0 and facts.height % 2 == 0 and min(facts.width, facts.height) >= 64
        assert result["video"]["file_size"] > 0 and isinstance(output.seed, int)
        assert result["prompt"] == payload["prompt"]

    await asyncio.gather(*(one(name) for name in SEED_FILES))
    # The internet URLs in the examples were never fetched (the loopback guard would
    # have failed the test), and each job cost submit + one stream + result.
    assert fal.request_count == 3 * len(SEED_FILES)


async def test_ltx2_reports_the_requested_size_for_billing(
    fal: FalClient, http: httpx.AsyncClient
) -> None:
    handle = await fal.enqueue(
        "fal-ai/ltx-2-19b/image-to-video",
        {"prompt": "p", "image_url": "https://example.com/x.jpg", "num_frames": 9,
         "video_size": {"width": 1280, "height": 720}, "generate_audio": False, "seed": 5},
    )
    await follow(fal, handle)
    result = await fal.result(handle)
    assert (result["video"]["width"], result["video"]["height"]) == (1280, 720)
    assert result["seed"] == 5
    facts = probe(await download(http, result["video"]["url"]))
    assert (facts.width, facts.height) == (320, 180)  # scale 0.25 of what was asked
    assert facts.audio_codec is None


async def test_queue_positions_while_waiting_for_a_slot(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(concurrency=1, run_seconds=30.0, steps=1)) as sim:
        fal = make_client(http, sim.url)
        first = await fal.enqueue("fal-ai/ltx-video", {"prompt": "one"})
        await sim.wait_state(first.request_id, "IN_PROGRESS")
        second = await fal.enqueue("fal-ai/ltx-video", {"prompt": "two"})
        third = await fal.enqueue("fal-ai/ltx-video", {"prompt": "three"})
        assert await fal.status(second) == Queued(position=0)
        assert await fal.status(third) == Queued(position=1)
        assert await fal.cancel(second) == "OK"
        assert await fal.status(third) == Queued(position=0)


# ------------------------------------------------------------------ headers and urls


async def test_submit_sends_key_priority_timeout_and_webhook(fal: FalClient, sim: Simulator) -> None:
    handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"}, priority="low",
                              timeout_seconds=30, webhook_url="https://hooks.example/fal")
    seen = sim.submitted[handle.request_id]
    assert seen["priority"] == "low"
    assert seen["timeout"] == "30"
    assert seen["webhook"] == "https://hooks.example/fal"
    assert sim.authorizations[f"Key {KEY}"] >= 1
    await follow(fal, handle)


async def test_no_authorization_header_without_a_key(http: httpx.AsyncClient, sim: Simulator) -> None:
    fal = make_client(http, sim.url, key=None)
    handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    await follow(fal, handle)
    await fal.result(handle)
    assert set(sim.authorizations) == {""}


async def test_handle_for_rebuilds_working_urls(fal: FalClient, sim: Simulator) -> None:
    submitted = await fal.enqueue("fal-ai/ltx-video/image-to-video",
                                 {"prompt": "x", "image_url": "https://example.com/a.png"})
    rebuilt = fal.handle_for("fal-ai/ltx-video/image-to-video", submitted.request_id)
    assert rebuilt == submitted
    assert rebuilt.response_url == f"{sim.url}/fal-ai/ltx-video/requests/{submitted.request_id}"
    assert isinstance((await follow(fal, rebuilt))[-1], Completed)
    assert (await fal.result(rebuilt))["video"]["num_frames"] == 121


def test_from_settings_reads_the_secret_and_urls() -> None:
    settings = BackendSettings(fal_key="abc", max_retries=2, data_uri_max_bytes=10)  # type: ignore[arg-type]
    fal = FalClient.from_settings(httpx.AsyncClient(), settings, queue_url="http://127.0.0.1:1")
    assert fal.queue_url == "http://127.0.0.1:1" and fal.rest_url == "https://rest.fal.ai"
    assert fal.max_retries == 2 and fal.data_uri_max_bytes == 10
    assert "abc" not in repr(fal)
    empty = FalClient.from_settings(httpx.AsyncClient(), BackendSettings(fal_key=""))  # type: ignore[arg-type]
    assert "none" in repr(empty)


# ------------------------------------------------------------------ errors


async def test_422_names_the_field(fal: FalClient) -> None:
    with pytest.raises(FalValidationError) as caught:
        await fal.enqueue("fal-ai/ltx-2-19b/image-to-video",
                         {"prompt": "x", "image_url": "https://example.com/a.png", "num_frames": 999})
    assert isinstance(caught.value, UserError)
    assert "num_frames" in str(caught.value) and "num frames" in str(caught.value)
    assert "481" in str(caught.value)
    assert caught.value.status == 422

    with pytest.raises(FalValidationError) as missing:
        await fal.enqueue("fal-ai/ltx-video-v097/extend", {"prompt": "x", "video": {}})
    assert "video.video_url" in str(missing.value)


async def test_422_with_a_string_detail(fal: FalClient, sim: Simulator) -> None:
    sim.fail_next(422, path_contains="/fal-ai/ltx-video")
    with pytest.raises(FalValidationError, match="Simulated HTTP 422"):
        await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})


async def test_429_and_503_are_retried(fal: FalClient, sim: Simulator) -> None:
    sim.fail_next(429, 2, path_contains="/fal-ai/ltx-video")
    handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    assert fal.request_count == 3
    sim.fail_next(503, 2, path_contains="/status/stream")
    sim.fail_next(504, 1, path_contains=f"/requests/{handle.request_id}")
    events = await follow(fal, handle)
    assert isinstance(events[-1], Completed)
    assert (await fal.result(handle))["video"]["num_frames"] == 121


async def test_exhausted_retries_keep_the_error_type(http: httpx.AsyncClient, sim: Simulator) -> None:
    fal = make_client(http, sim.url, max_retries=2)
    sim.fail_next(503, 5)
    with pytest.raises(FalTransportError) as caught:
        await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    assert caught.value.status == 503
    assert caught.value.error_type == "runner_scheduling_failure"
    assert caught.value.upstream_fault
    assert fal.request_count == 3


async def test_other_4xx_are_not_retried(fal: FalClient, sim: Simulator) -> None:
    sim.fail_next(400)
    with pytest.raises(FalError) as caught:
        await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    assert type(caught.value) is FalError and caught.value.status == 400
    assert not caught.value.upstream_fault
    assert fal.request_count == 1
    # 401/403 are about the operator's key or account (see test_fal_account.py): not retried.
    for status in (401, 403):
        sim.fail_next(status)
        with pytest.raises(FalAccountError) as refused:
            await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
        assert refused.value.status == status
    assert fal.request_count == 3


async def test_unreachable_fal_is_a_transport_error(http: httpx.AsyncClient) -> None:
    probe_socket = __import__("socket").socket()
    probe_socket.bind(("127.0.0.1", 0))
    port = probe_socket.getsockname()[1]
    probe_socket.close()  # nothing listens there now
    fal = make_client(http, f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(FalTransportError) as caught:
        await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    assert caught.value.retryable and fal.request_count == 3


async def test_random_faults_still_complete(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(fail_rate=0.3, seed=3)) as sim:
        fal = make_client(http, sim.url, max_retries=10)
        handles = [await fal.enqueue("fal-ai/ltx-video", {"prompt": f"{i}"}) for i in range(4)]
        for handle in handles:
            assert isinstance((await follow(fal, handle))[-1], Completed)
            assert (await fal.result(handle))["video"]["num_frames"] == 121
        # Every fault was retried, and nothing else cost a request.
        assert sim.faults_injected > 0
        assert fal.request_count == 3 * len(handles) + sim.faults_injected


async def test_a_request_that_fails_on_fal(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(error_rate=1.0)) as sim:
        fal = make_client(http, sim.url)
        handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
        final = (await follow(fal, handle))[-1]
        assert isinstance(final, Failed) and final.error_type == "runner_disconnected"
        with pytest.raises(FalRequestFailed) as caught:
            await fal.result(handle)
        assert caught.value.error_type == "runner_disconnected" and caught.value.status == 500


async def test_result_expired(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(result_ttl_seconds=0.0)) as sim:
        fal = make_client(http, sim.url)
        handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
        await follow(fal, handle)
        with pytest.raises(ResultExpired):
            await fal.result(handle)
        with pytest.raises(ResultExpired):
            await fal.result(fal.handle_for("fal-ai/ltx-video", "no-such-request"))


# ------------------------------------------------------------------ streams


@pytest.mark.parametrize("sim_options", [fast_options(drop_stream_rate=1.0, run_seconds=0.4,
                                                      steps=8)])
async def test_dropped_stream_falls_back_to_polling(fal: FalClient, sim: Simulator) -> None:
    handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    events = await follow(fal, handle)
    assert isinstance(events[-1], Completed)
    assert sim.requests_by_kind["stream"] >= 1
    assert sim.requests_by_kind["status"] >= 1  # the fallback polls
    # Progress was seen, and each event is a change.
    assert any(isinstance(e, Running) and e.progress for e in events)
    assert all(a != b for a, b in itertools.pairwise(events))
    assert (await fal.result(handle))["video"]["num_frames"] == 121


async def test_stream_refused_means_polling_only(fal: FalClient, sim: Simulator) -> None:
    sim.fail_next(404, path_contains="/status/stream")
    handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    events = await follow(fal, handle)
    assert isinstance(events[-1], Completed)
    assert sim.requests_by_kind["stream"] == 0  # refused before the handler, never retried
    assert sim.requests_by_kind["status"] >= 1


# ------------------------------------------------------------------ cancel


async def test_cancel_while_queued_and_while_running(http: httpx.AsyncClient) -> None:
    async with Simulator(fast_options(concurrency=1, run_seconds=30.0, steps=30)) as sim:
        fal = make_client(http, sim.url)
        running = await fal.enqueue("fal-ai/ltx-video", {"prompt": "runs"})
        await sim.wait_state(running.request_id, "IN_PROGRESS")
        queued = await fal.enqueue("fal-ai/ltx-video", {"prompt": "waits"})
        assert isinstance(await fal.status(queued), Queued)

        assert await fal.cancel(queued) == "OK"
        final = (await follow(fal, queued))[-1]
        assert isinstance(final, Failed) and final.error_type == "request_cancelled"

        assert await fal.cancel(running) == "CANCELLATION_REQUESTED"
        final = (await follow(fal, running))[-1]
        assert isinstance(final, Failed)

        assert await fal.cancel(running) == "ALREADY_COMPLETED"
        assert await fal.cancel(fal.handle_for("fal-ai/ltx-video", "nope")) == "NOT_FOUND"
        with pytest.raises(FalRequestFailed):
            await fal.result(running)


async def test_cancel_outcomes_from_codes_alone(http: httpx.AsyncClient) -> None:
    """fal's cancel codes are undocumented: a body without `status` is read by its code."""
    answers = {"a": (202, None), "b": (404, None), "c": (400, None), "d": (200, "OK")}

    async def cancel(request: web.Request) -> web.Response:
        code, status = answers[request.match_info["rid"]]
        return web.json_response({"status": status} if status else {}, status=code)

    app = web.Application()
    app.router.add_put("/o/a/requests/{rid}/cancel", cancel)
    async with serve(app) as base:
        fal = make_client(http, base)
        got = [await fal.cancel(fal.handle_for("o/a", rid)) for rid in "abcd"]
        assert got == ["CANCELLATION_REQUESTED", "NOT_FOUND", "ALREADY_COMPLETED", "OK"]


# ------------------------------------------------------------------ uploads


def _png(color: tuple[int, int, int], size: tuple[int, int] = (256, 192)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


async def test_upload_then_image_to_video_uses_the_image(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "red photo ü.png"
    path.write_bytes(_png((210, 40, 30)))
    url = await fal.upload(path, content_type="image/png", filename=path.name)
    assert url.startswith(f"{sim.url}/files/")
    assert await download(http, url) == path.read_bytes()
    # The token is cached: a second upload asks for no new one.
    await fal.upload(path, content_type="image/png", filename="again.png")
    assert sim.requests_by_kind["token"] == 1 and sim.requests_by_kind["upload"] == 2

    handle = await fal.enqueue("fal-ai/ltx-video/image-to-video",
                              {"prompt": "pan over red", "image_url": url, "seed": 1})
    await follow(fal, handle)
    facts = probe(await download(http, (await fal.result(handle))["video"]["url"]))
    red, green, blue = facts.first_rgb
    assert red > 170 and green < 80 and blue < 80, facts.first_rgb


async def test_small_files_go_inline_as_data_uris(
    http: httpx.AsyncClient, sim: Simulator, tmp_path: Path
) -> None:
    fal = make_client(http, sim.url, data_uri_max_bytes=1_000_000)
    path = tmp_path / "blue.png"
    path.write_bytes(_png((20, 40, 220)))
    uri = await fal.upload(path, content_type="image/png", filename="blue.png")
    assert uri.startswith("data:image/png;base64,")
    assert sim.requests_by_kind["token"] == 0 and fal.request_count == 0
    handle = await fal.enqueue("fal-ai/ltx-2-19b/image-to-video",
                              {"prompt": "blue", "image_url": uri, "num_frames": 17})
    await follow(fal, handle)
    facts = probe(await download(http, (await fal.result(handle))["video"]["url"]))
    assert facts.frames == 17 and facts.first_rgb[2] > 170


# ------------------------------------------------------------------ secrets


async def test_the_key_never_reaches_logs_or_errors(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    # A hostile server that echoes the Authorization header back in its errors.
    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        code = int(request.match_info["code"])
        headers = {"Retry-After": "0"} if code == 429 else {}
        return web.json_response({"detail": f"bad credentials {auth}", "error_type": auth},
                                 status=code, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{code}/{tail:.*}", echo)
    async with serve(app) as base:
        for code in (401, 422, 429, 500):
            fal = make_client(http, f"{base}/{code}", max_retries=1)
            try:
                await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
            except FalError as exc:
                errors.append(exc)

    async with Simulator(fast_options(api_key="the-right-key")) as sim:
        fal = make_client(http, sim.url, max_retries=1)
        for attempt in (
            fal.enqueue("fal-ai/ltx-video", {"prompt": "x"}),
            fal.status(fal.handle_for("fal-ai/ltx-video", "x")),
            fal.result(fal.handle_for("fal-ai/ltx-video", "x")),
        ):
            try:
                await attempt
            except FalError as exc:
                errors.append(exc)
    assert len(errors) == 7
    assert any(e.status == 401 for e in errors)
    for exc in errors:
        assert KEY not in str(exc) and KEY not in repr(exc)
        assert KEY not in str(exc.error_type)
        assert KEY not in "".join(str(a) for a in exc.args)
    assert "[redacted]" in "".join(str(e) for e in errors)
    assert caplog.records  # the client did log (retries, requests)
    assert KEY not in caplog.text
    assert all(KEY not in str(r.args) for r in caplog.records)


async def test_pool_shards_spread_open_streams(sim: Simulator) -> None:
    transport = PoolShards(3)
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
        fal = make_client(http, sim.url)
        sim.options.run_seconds = 30.0
        handles = [await fal.enqueue("fal-ai/ltx-video", {"prompt": f"{i}"}) for i in range(3)]
        streams = [fal.events(h) for h in handles]
        for stream, handle in zip(streams, handles, strict=True):
            await anext(stream)  # the stream is open now
            assert handle.request_id
        # Three open streams, one per shard: no pool holds them all.
        assert transport.in_flight == (1, 1, 1)
        for handle in handles:
            assert await fal.cancel(handle) in ("OK", "CANCELLATION_REQUESTED")
        for stream in streams:
            events = [event async for event in stream]
            assert isinstance(events[-1], Failed)
        assert transport.in_flight == (0, 0, 0)
    client = new_http_client(timeout=1.0, shards=2)
    assert isinstance(client._transport, PoolShards)
    await client.aclose()


async def test_an_echoed_key_at_the_cut_leaves_no_prefix(http: httpx.AsyncClient) -> None:
    """Error text is cut to length; redaction must come first, or the key's start survives."""
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        code = int(request.match_info["code"])
        padding = "x" * int(request.match_info["pad"])
        detail: object = f"{padding}{auth} tail"
        if code == 422:
            detail = [{"loc": ["body", "prompt"], "msg": f"{padding}{auth}", "type": "value_error"}]
        return web.json_response({"detail": detail}, status=code)

    app = web.Application()
    app.router.add_route("*", "/{code}/{pad}/{tail:.*}", echo)
    async with serve(app) as base:
        # Slide the echoed key across the 300-character cut of every error kind.
        for code in (400, 422, 500):
            for pad in range(240, 300, 4):
                fal = make_client(http, f"{base}/{code}/{pad}", max_retries=0)
                with pytest.raises(FalError) as info:
                    await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
                seen.append(str(info.value))
    for text in seen:
        # Not the key, and not any 6-character piece of it either.
        assert not any(KEY[i : i + 6] in text for i in range(len(KEY) - 5)), text


@pytest.mark.parametrize(("status", "retried"), [(429, True), (503, True), (502, False), (504, False)])
async def test_a_submit_is_sent_again_only_when_fal_refused_it(
    http: httpx.AsyncClient, status: int, retried: bool
) -> None:
    """A 502/504 may come after fal queued the job: sending it again could mean two paid jobs."""
    async with Simulator(fast_options(api_key=KEY)) as sim:
        fal = make_client(http, sim.url)
        sim.fail_next(status, 1, path_contains="fal-ai/ltx-video")
        before = sim.requests_seen  # a faulted request never reaches the submit handler
        if retried:
            handle = await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
            assert handle.request_id
        else:
            with pytest.raises(FalError) as info:
                await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
            assert info.value.status == status
        # The faulted attempt plus, when refused outright, exactly one more.
        assert sim.requests_seen - before == (2 if retried else 1)


async def test_the_cdn_upload_token_and_case_variants_never_show(
        http: httpx.AsyncClient, tmp_path: Path) -> None:
    """fal's storage token is issued at run time: the log formatter learns it, and neither a
    log line nor an error text shows it (or the key) in any letter case."""
    token = "cdn-Upload-Token-0123456789abcdefXYZ"

    async def issue(request: web.Request) -> web.Response:
        base = f"http://{request.host}/cdn"
        return web.json_response({"token": token, "token_type": "Bearer", "base_url": base,
                                  "expires_at": "2999-01-01T00:00:00+00:00"})

    async def refuse(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"detail": f"bad {auth.upper()} / {auth.lower()}",
                                  "error_type": auth.swapcase()[:60]}, status=400)

    async def queue(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.Response(text=f"no: {auth.upper()} {auth.lower()}", status=403)

    app = web.Application()
    app.router.add_post("/storage/auth/token", issue)
    app.router.add_post("/cdn/files/upload", refuse)
    app.router.add_post("/{tail:.*}", queue)
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"p" * 64)
    async with serve(app) as base:
        fal = make_client(http, base, max_retries=0)
        with pytest.raises(FalError) as upload:
            await fal.upload(image, content_type="image/png", filename="a.png")
        with pytest.raises(FalError) as submit:
            await fal.enqueue("fal-ai/ltx-video", {"prompt": "x"})
    texts = [str(upload.value), repr(upload.value), str(submit.value), repr(submit.value)]
    assert "[redacted]" in texts[0] and "[redacted]" in texts[2]

    from bot.cli import RedactingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", [KEY]))
    log = logging.getLogger("tests.cdn_redaction")
    log.addHandler(handler)
    try:
        # What a library might echo at DEBUG: the header, as sent and case-folded.
        log.warning("upload headers: Authorization: Bearer %s (%s)", token, token.upper())
        log.warning("queue headers: Authorization: Key %s", KEY.lower())
    finally:
        log.removeHandler(handler)
    texts.append(stream.getvalue())
    assert stream.getvalue().count("<redacted>") == 3
    for text in texts:
        for secret in (token, KEY):
            assert secret.lower() not in text.lower(), text

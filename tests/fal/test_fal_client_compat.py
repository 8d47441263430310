"""The official fal-client, aimed at the simulator, completes jobs end to end.

fal-client builds queue URLs from the module constant QUEUE_URL_FORMAT (computed
at import from FAL_QUEUE_RUN_HOST, always https), so the test points that
constant at the simulator; everything after submit follows the URLs the
simulator returned, exactly as against fal.
"""

from __future__ import annotations

import fal_client
import fal_client.client
import httpx
import pytest

from bot.sim import Simulator
from tests.fal.conftest import KEY
from tests.fal.helpers import download, probe


@pytest.fixture
def official(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> fal_client.AsyncClient:
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{sim.url}/")
    return fal_client.AsyncClient(key=KEY)


async def test_subscribe_with_logs(official: fal_client.AsyncClient, sim: Simulator,
                                   http: httpx.AsyncClient) -> None:
    updates: list[fal_client.Status] = []
    result = await official.subscribe(
        "fal-ai/ltx-2-19b/image-to-video",
        arguments={"prompt": "official client", "image_url": "https://example.com/a.jpg",
                   "num_frames": 17},
        with_logs=True,
        on_queue_update=updates.append,
        interval=0.02,
    )
    assert isinstance(updates[-1], fal_client.Completed)
    assert updates[-1].metrics["inference_time"] > 0
    assert any(isinstance(u, fal_client.InProgress) and u.logs for u in updates)
    assert result["video"]["num_frames"] == 17
    assert probe(await download(http, result["video"]["url"])).frames == 17
    assert sim.authorizations[f"Key {KEY}"] >= 3


async def test_status_result_and_cancel_by_request_id(official: fal_client.AsyncClient,
                                                      sim: Simulator) -> None:
    handle = await official.submit("fal-ai/ltx-video/image-to-video",
                                   {"prompt": "x", "image_url": "https://example.com/a.jpg"})
    async for status in handle.iter_events(with_logs=True, interval=0.02):
        assert isinstance(status, fal_client.Queued | fal_client.InProgress | fal_client.Completed)
    # Rebuilt from the request id alone (owner/app URLs), as after a restart.
    status = await official.status("fal-ai/ltx-video/image-to-video", handle.request_id,
                                   with_logs=True)
    assert isinstance(status, fal_client.Completed) and status.error is None
    result = await official.result("fal-ai/ltx-video/image-to-video", handle.request_id)
    assert result["video"]["num_frames"] == 121
    # Cancelling a finished request is a 400 ALREADY_COMPLETED that fal-client raises.
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        await official.cancel("fal-ai/ltx-video/image-to-video", handle.request_id)
    assert caught.value.status_code == 400


async def test_validation_error_reaches_the_official_client(
    official: fal_client.AsyncClient,
) -> None:
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        await official.submit("fal-ai/ltx-video", {"prompt": ""})
    assert caught.value.status_code == 422
    assert caught.value.message[0]["loc"] == ["body", "prompt"]


def _spec_examples() -> list[tuple[str, dict[str, object]]]:
    """Each new endpoint with the first of its spec's examples it takes (frames cut short)."""
    from bot import catalog
    from tests.specs import extract

    cases: list[tuple[str, dict[str, object]]] = []
    for spec in extract.load()["specs"].values():
        for endpoint_id in spec["endpoints"]:
            model = catalog.by_endpoint_id(endpoint_id).input_model
            for example in spec["inputs"]:
                try:
                    model.model_validate(example)
                except ValueError:
                    continue
                short = {"num_frames": 17} if "num_frames" in model.model_fields else {}
                cases.append((endpoint_id, {**example, **short}))
                break
    return sorted(cases)


@pytest.mark.parametrize(("endpoint_id", "arguments"), _spec_examples(), ids=lambda v: str(v)[:60])
async def test_official_client_completes_each_new_endpoint(
    official: fal_client.AsyncClient, endpoint_id: str, arguments: dict[str, object],
) -> None:
    result = await official.subscribe(endpoint_id, arguments=arguments, interval=0.02)
    assert result["video"]["url"] and result["video"]["num_frames"] > 0

"""The simulator's "delete request payloads" (fal's Platform API,
DELETE /models/requests/{id}/payloads), which the Delete button and forget-me call."""

from __future__ import annotations

import dataclasses

import httpx

from bot.sim import Simulator

from .conftest import fast_options


async def _done(sim: Simulator, http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    reply = (await http.post(f"{sim.url}/fal-ai/ltx-video", json={"prompt": "a fox"},
                             headers=headers)).json()
    rid = reply["request_id"]
    await sim.wait_state(rid, "COMPLETED")
    result = (await http.get(reply["response_url"], headers=headers)).json()
    return rid, result["video"]["url"]


async def test_delete_payloads_removes_the_result_and_its_files(http: httpx.AsyncClient) -> None:
    options = dataclasses.replace(fast_options(), api_key="k")
    async with Simulator(options) as sim:
        key = {"Authorization": "Key k"}
        rid, video = await _done(sim, http, key)
        assert (await http.get(video)).status_code == 200
        url = f"{sim.url}/models/requests/{rid}/payloads"
        assert (await http.delete(url)).status_code == 401  # the key is needed, as at fal
        answer = await http.delete(url, headers=key)
        assert answer.status_code == 200
        assert answer.json() == {"cdn_delete_results": [{"link": video, "exception": None}]}
        assert (await http.get(video)).status_code == 404
        assert (await http.get(f"{sim.url}/fal-ai/ltx-video/requests/{rid}",
                               headers=key)).status_code == 404
        assert (await http.delete(url, headers=key)).status_code == 404  # already gone
        assert (await http.delete(f"{sim.url}/models/requests/nope/payloads",
                                  headers=key)).status_code == 404

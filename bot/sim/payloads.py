"""The simulator's side of fal's "delete request payloads" (Platform API,
`DELETE /models/requests/{request_id}/payloads`): the result and its output files go,
and the answer lists each file with its outcome, as fal does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .files import file_id_of

if TYPE_CHECKING:
    from .server import Simulator

ROUTE = "/models/requests/{request_id}/payloads"


def add_route(app: web.Application, sim: Simulator) -> None:
    async def delete(request: web.Request) -> web.Response:
        return _delete(sim, request)

    app.router.add_delete(ROUTE, delete)


def _delete(sim: Simulator, request: web.Request) -> web.Response:
    sim.requests_by_kind["delete_payloads"] += 1
    refused = sim._refuse_auth(request)
    if refused is not None:
        return refused
    job = sim._jobs.get(request.match_info["request_id"])
    if job is None or job.result is None:
        return web.json_response({"detail": "Request not found."}, status=404)
    results = []
    for link in sorted(set(_urls(job.result))):
        file_id = file_id_of(link)
        if file_id is not None and sim._files.discard(file_id):
            results.append({"link": link, "exception": None})
    job.result = None
    job.payload = {}
    # Gone as an expired result is: GET of the result answers 404 from now on.
    job.done_at = 0.0
    return web.json_response({"cdn_delete_results": results})


def _urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [u for k, v in value.items()
                for u in ([v] if k == "url" and isinstance(v, str) else _urls(v))]
    if isinstance(value, list):
        return [u for item in value for u in _urls(item)]
    return []

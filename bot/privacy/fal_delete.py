"""Asking fal to delete what it keeps of a job: the request's stored inputs and outputs and
the output files on its CDN (`DELETE {platform}/models/requests/{id}/payloads`, fal's
Platform API). fal keeps a request's payloads 30 days by default and its output files
as long as the account's storage settings say; the delete needs a key with admin
scope, so with an ordinary key the answer is a refusal, and the user is told how long
fal keeps the file instead. A simulator or fal-compatible server on the backend's
REST address serves the same route.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.config import Settings
from bot.config.sections import DEFAULT_FAL_REST_URL

log = logging.getLogger(__name__)

FAL_PLATFORM_URL = "https://api.fal.ai/v1"
FAL_PAYLOAD_DAYS = 30
FAL_KEEPS = (f"fal keeps a request's inputs and outputs for {FAL_PAYLOAD_DAYS} days, and the "
             "video file for as long as the fal account's storage settings say (no expiry "
             "unless the operator set one)")


@dataclass(frozen=True)
class FalDeletion:
    """What fal said: `deleted`, or why not in a few words."""

    deleted: bool
    why: str = ""

    def sentence(self) -> str:
        if self.deleted:
            return "fal deleted its copy of the request and the video file too."
        return f"fal's copy was not deleted ({self.why}): {FAL_KEEPS}."


def platform_url(settings: Settings, rest_url: str) -> str:
    """Where the delete goes: `[privacy] fal_platform_url`, else fal's Platform API when the
    backend is fal itself, else the backend's own REST address (a simulator)."""
    configured = settings.privacy.fal_platform_url
    if configured:
        return configured.rstrip("/")
    if rest_url.rstrip("/") == DEFAULT_FAL_REST_URL.rstrip("/"):
        return FAL_PLATFORM_URL
    return rest_url.rstrip("/")


async def delete_at_fal(http: httpx.AsyncClient, settings: Settings, rest_url: str,
                        request_id: str | None) -> FalDeletion:
    """One DELETE of the request's payloads; never raises (a failure is an answer)."""
    if not request_id:
        return FalDeletion(False, "the job never reached fal")
    if not settings.privacy.delete_at_fal:
        return FalDeletion(False, "turned off in [privacy] delete_at_fal")
    key = settings.backend.fal_key
    headers = {"Authorization": f"Key {key.get_secret_value()}"} if key else {}
    url = f"{platform_url(settings, rest_url)}/models/requests/{quote(request_id, safe='')}/payloads"
    try:
        response = await http.delete(url, headers=headers,
                                     timeout=settings.backend.request_timeout_seconds)
    except httpx.HTTPError as exc:
        return FalDeletion(False, f"fal did not answer: {type(exc).__name__}")
    return _judge(response)


def _judge(response: httpx.Response) -> FalDeletion:
    status = response.status_code
    if status in (401, 403):
        return FalDeletion(False, "the fal key has no admin scope")
    if status == 404:
        return FalDeletion(True)  # fal no longer has it: nothing left to delete
    if not 200 <= status < 300:
        return FalDeletion(False, f"fal answered HTTP {status}")
    failed = [r for r in _results(response) if r.get("exception") or r.get("error")]
    if failed:
        log.info("fal could not delete %d file(s) of a request", len(failed))
        return FalDeletion(False, f"fal could not delete {len(failed)} file(s)")
    return FalDeletion(True)


def _results(response: httpx.Response) -> list[dict[str, Any]]:
    """Per-file outcomes, under either spelling fal has documented."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    found = body.get("cdn_delete_results") or body.get("CDN_DELETE_RESULTS") or []
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []

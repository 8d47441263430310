"""The buttons on a job's card: cancel, re-roll, extend, continue, delete.

Re-roll, extend and continue start a child job (its `parent_id` is the job
whose button was pressed) for whoever pressed it, on their own quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot import catalog, grammar, media, routing
from bot.commands.generate import fit_images, scratch, start
from bot.commands.services import Handler, Services, job_id_of
from bot.errors import MediaError, UsageError
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia, MediaRef
from bot.ports import ACTION_KINDS, ChatPort, Invocation


async def press(svc: Services, inv: Invocation, port: ChatPort) -> None:
    kind = str(inv.options.get("action", ""))
    if kind not in ACTION_KINDS:
        raise UsageError(f"Unknown action {kind!r}.")
    await BUTTONS[kind](svc, inv, job_id_of(inv))


HANDLERS: dict[str, Handler] = {"action": press}


async def _cancel(svc: Services, inv: Invocation, job_id: int) -> None:
    await svc.runner.cancel(job_id, inv.user)


async def _delete(svc: Services, inv: Invocation, job_id: int) -> None:
    await svc.runner.delete_result(job_id, inv.user)


async def _reroll(svc: Services, inv: Invocation, job_id: int) -> None:
    """The same input with a new seed, priced for the size the parent really had."""
    parent = await svc.job(job_id)
    endpoint = catalog.by_endpoint_id(parent.endpoint_id)
    data = routing.validate_input(endpoint, {**parent.input, "seed": routing.random_seed()})
    made = (parent.result or {}).get("video") or {}
    aspect = (made["width"] / made["height"]) if made.get("width") and made.get("height") else None
    estimate = catalog.estimate(
        endpoint, data, svc.settings.quota.credits_per_usd, svc.settings.prices,
        input_aspect=aspect,
    )
    request = GenerationRequest(endpoint=endpoint, input=data, estimate=estimate, prompt=parent.prompt)
    await start(svc, inv, request, [], parent_id=parent.id, parent_kind="reroll")


async def _extend(svc: Services, inv: Invocation, job_id: int) -> None:
    parent, video_url = await _finished(svc, job_id, "extend")
    command = grammar.parse("extend", inv.text.strip() or parent.prompt)
    ref = MediaRef(kind="video", url=video_url)
    request = routing.build_request(command, [ref], svc.settings, seed_source=routing.random_seed,
                                    input_aspect=_made_aspect(parent))
    await start(svc, inv, request, [None], parent_id=parent.id, parent_kind="extend")


def _made_aspect(parent: JobRecord) -> float | None:
    """The width/height of a job's video (an extension keeps its shape): as fal reported
    it, else as it was asked for."""
    made = (parent.result or {}).get("video") or {}
    if made.get("width") and made.get("height"):
        return float(made["width"]) / float(made["height"])
    try:
        endpoint = catalog.by_endpoint_id(parent.endpoint_id)
    except catalog.UnknownModel:
        return None
    width, height, _ = catalog.output_geometry(endpoint, parent.input)
    return width / height


async def _continue(svc: Services, inv: Invocation, job_id: int) -> None:
    """The last frame of the result becomes the image of an image-to-video job."""
    parent, video_url = await _finished(svc, job_id, "continue")
    with scratch(svc) as folder:
        frame = await _last_frame(svc, parent.id, video_url, folder)
        command = grammar.parse("video", inv.text.strip() or parent.prompt)
        request = routing.build_request(
            command, [MediaRef(kind="image", url=frame.source)], svc.settings,
            seed_source=routing.random_seed,
        )
        prepared = await fit_images(svc, request, [frame], folder)
        await start(svc, inv, request, prepared, parent_id=parent.id, parent_kind="continue")


BUTTONS: dict[str, Callable[[Services, Invocation, int], Awaitable[None]]] = {
    "cancel": _cancel, "reroll": _reroll, "extend": _extend, "continue": _continue,
    "delete": _delete,
}


async def _finished(svc: Services, job_id: int, kind: str) -> tuple[JobRecord, str]:
    """The job and the URL of its video, or a refusal when it has none (yet)."""
    parent = await svc.job(job_id)
    if parent.state is not JobState.DONE or not parent.result_url:
        raise UsageError(f"Job #{parent.id} has no finished video to {kind} yet.")
    return parent, parent.result_url


async def _last_frame(svc: Services, job_id: int, video_url: str, folder: Path) -> LocalMedia:
    try:
        video = await svc.fetcher.download(
            video_url, folder / "parent.mp4", max_bytes=svc.settings.media.max_input_bytes * 4,
        )
    except MediaError:
        where = ("the built-in simulator keeps them only while it runs"
                 if svc.settings.uses_simulator else "fal keeps results for about an hour")
        raise MediaError(
            f"The video of job #{job_id} can't be fetched any more ({where}). "
            "Re-roll it, or attach the video to /extend yourself."
        ) from None
    frame = await asyncio.to_thread(media.last_frame, video, folder)
    info = await asyncio.to_thread(media.probe, frame, svc.settings.media)
    return LocalMedia(path=frame, info=info, source=f"last frame of job #{job_id}")

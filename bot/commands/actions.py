"""The buttons on a job's card: cancel, re-roll, extend, continue, delete.

Re-roll, extend and continue start a child job (its `parent_id` is the job
whose button was pressed) for whoever pressed it, on their own quota. Each first
fetches what it needs from the parent (its inputs, or its video) from the backend;
when that is gone, all three refuse alike (`_gone`), before anything is charged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from bot import catalog, grammar, media, routing
from bot.commands.generate import fit_images, scratch, start
from bot.commands.services import Handler, Services, job_id_of
from bot.community import moderation, safety
from bot.errors import MediaError, UsageError
from bot.model import GenerationRequest, JobRecord, JobState, LocalMedia, MediaRef
from bot.ports import ACTION_KINDS, ChatPort, Invocation


async def press(svc: Services, inv: Invocation, port: ChatPort) -> str | None:
    kind = str(inv.options.get("action", ""))
    if kind not in ACTION_KINDS:
        raise UsageError(f"Unknown action {kind!r}.")
    if kind in moderation.BUTTONS:  # Report, and the moderation log's buttons: a note back
        return await moderation.BUTTONS[kind](svc, inv, port, job_id_of(inv))
    if kind in ("reroll", "extend", "continue"):
        # A button starts a job here too: the server's rules apply, and a prompt typed for it.
        await safety.admit(svc, inv, port.traits, [inv.text])
    await BUTTONS[kind](svc, inv, job_id_of(inv))
    return None


HANDLERS: dict[str, Handler] = {"action": press}


async def _cancel(svc: Services, inv: Invocation, job_id: int) -> None:
    await svc.runner.cancel(job_id, inv.user)


async def _delete(svc: Services, inv: Invocation, job_id: int) -> None:
    await svc.runner.delete_result(job_id, inv.user)


async def _reroll(svc: Services, inv: Invocation, job_id: int) -> None:
    """The same input with a new seed, priced for the size the parent really had."""
    parent = await svc.job(job_id)
    with scratch(svc) as folder:
        # Its inputs are still at the backend, or the re-roll would be of nothing.
        for index, url in enumerate(_media_urls(parent.input)):
            await _from_backend(svc, parent.id, "inputs", url, folder / f"input-{index}")
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
    """The result's URL goes to the extend model (it is the backend's own file), once the
    video behind it has been seen to be there."""
    parent, video_url = await _finished(svc, job_id, "extend")
    command = grammar.parse("extend", inv.text.strip() or parent.prompt)
    with scratch(svc) as folder:
        await _parent_video(svc, parent.id, video_url, folder)
    ref = MediaRef(kind="video", url=svc.fetcher.current_url(video_url))
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
    command = grammar.parse("video", inv.text.strip() or parent.prompt)
    with scratch(svc) as folder:
        video = await _parent_video(svc, parent.id, video_url, folder)
        frame = await _last_frame(parent.id, video.path, folder, svc)
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


async def _from_backend(svc: Services, job_id: int, what: str, url: str, dest: Path) -> Path:
    """A file of job `job_id` from the backend, or the one refusal every follow-up gives."""
    try:
        # Results are fitted for chat later; this cap only stops a runaway download.
        return await svc.fetcher.fetch_result(
            url, dest, max_bytes=svc.settings.media.max_input_bytes * 4)
    except MediaError as exc:
        raise _gone(job_id, what, exc) from None


_GONE_ADVICE = {
    "video": "Re-roll it, or attach the video to /extend yourself.",
    "inputs": "Send them again with a new command.",
}


def _gone(job_id: int, what: str, exc: MediaError) -> MediaError:
    """The one refusal of a follow-up whose parent's files are gone (or unreadable)."""
    lost = isinstance(exc, media.BackendFileError) and exc.gone
    why = "gone from the video backend" if lost else exc.message.rstrip(".")
    return MediaError(
        f"The {what} of job #{job_id} can't be fetched any more ({why}), so I started "
        f"nothing and charged nothing. {_GONE_ADVICE[what]}"
    )


async def _parent_video(svc: Services, job_id: int, video_url: str, folder: Path) -> LocalMedia:
    path = await _from_backend(svc, job_id, "video", video_url, folder / "parent.mp4")
    try:
        info = await asyncio.to_thread(media.probe_output, path)
    except MediaError as exc:
        raise _gone(job_id, "video", exc) from None
    return LocalMedia(path=path, info=info, source=f"video of job #{job_id}",
                      filename=f"job-{job_id}.mp4")


async def _last_frame(job_id: int, video: Path, folder: Path, svc: Services) -> LocalMedia:
    frame = await asyncio.to_thread(media.last_frame, video, folder)
    info = await asyncio.to_thread(media.probe, frame, svc.settings.media)
    return LocalMedia(path=frame, info=info, source=f"last frame of job #{job_id}")


def _media_urls(value: Any) -> Iterator[str]:
    """The media URLs in a fal input (LTX inputs name them `*_url`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and key.endswith("_url") and item.startswith("http"):
                yield item
            else:
                yield from _media_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _media_urls(item)

"""The buttons on a job's card: cancel, re-roll, extend, continue, delete, retake, restyle
(and a forget-me confirmation's Forget me).

Re-roll, extend, retake, restyle and continue start a child job (its `parent_id` is the job
whose button was pressed) for whoever pressed it, on their own quota. Each first
fetches what it needs from the parent (its inputs, or its video) from the backend;
when that is gone, all three refuse alike (`_gone`), before anything is charged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot import catalog, grammar, media, routing
from bot.commands import privacy
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
    if kind in ("reroll", "extend", "continue", "retake", "restyle"):
        # A button starts a job here too: the server's rules apply, and a prompt typed for it.
        await safety.admit(svc, inv, port.traits, [inv.text])
    # Forget me names no job (its id is 0): it confirms the presser's own forget-me.
    return await BUTTONS[kind](svc, inv, 0 if kind == "forget" else job_id_of(inv))


HANDLERS: dict[str, Handler] = {"action": press}

_EARLIER = re.compile(r"#(\d{1,19})(?:\s+(.*))?$", re.S)


def on_earlier_result(inv: Invocation) -> Invocation:
    """`retake #3 a cat --from 1 --to 2` (also `extend #3 ...`, `restyle #3 ...`) typed on any
    surface, without a file: the same as that job's button, so a slash command's text or a
    mention reaches an earlier result as a button does. Anything else is unchanged."""
    word = inv.command.lower().lstrip("/")
    if word not in grammar.EARLIER_RESULT_WORDS or inv.attachments:
        return inv
    match = _EARLIER.match(inv.text.strip())
    if match is None:
        return inv
    return replace(inv, command="action", text=(match.group(2) or "").strip(),
                   options={**inv.options, "action": word, "job_id": int(match.group(1))})


async def _cancel(svc: Services, inv: Invocation, job_id: int) -> None:
    await svc.runner.cancel(job_id, inv.user)


async def _delete(svc: Services, inv: Invocation, job_id: int) -> str:
    await svc.runner.delete_result(job_id, inv.user)
    return await privacy.delete_at_fal_too(svc, job_id)


async def _reroll(svc: Services, inv: Invocation, job_id: int) -> None:
    """The same input with a new seed, priced for the size the parent really had. A model
    without a seed (LTX-2.3 Pro/Fast, extend, retake, audio) gets the same input again:
    it varies by itself, and would refuse a seed."""
    parent = await svc.job(job_id)
    with scratch(svc) as folder:
        # Its inputs are still at the backend, or the re-roll would be of nothing.
        for index, url in enumerate(_media_urls(parent.input)):
            await _from_backend(svc, parent.id, "inputs", url, folder / f"input-{index}")
    endpoint = catalog.by_endpoint_id(parent.endpoint_id)
    seed = {"seed": routing.random_seed()} if endpoint.takes_seed else {}
    data = routing.validate_input(endpoint, {**parent.input, **seed})
    made = (parent.result or {}).get("video") or {}
    aspect = (made["width"] / made["height"]) if made.get("width") and made.get("height") else None
    estimate = catalog.estimate(
        endpoint, data, svc.settings.quota.credits_per_usd, svc.settings.prices,
        input_aspect=aspect, media_seconds=made.get("duration"),
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


async def _retake(svc: Services, inv: Invocation, job_id: int) -> None:
    """`retake #N <prompt> --from 2 --to 5` (and a Retake form): the job's video to the retake
    model. The range is checked against the video's real length before anything is charged."""
    await _on_video(svc, inv, job_id, "retake")


async def _restyle(svc: Services, inv: Invocation, job_id: int) -> None:
    """`restyle #N <prompt>`: the job's video to the restyle model."""
    await _on_video(svc, inv, job_id, "restyle")


async def _on_video(svc: Services, inv: Invocation, job_id: int, name: str) -> None:
    parent, video_url = await _finished(svc, job_id, name)
    # A form's fields come as options beside the action's own (action, job_id).
    options = {k: v for k, v in inv.options.items() if k in grammar.OPTION_BY_NAME}
    command = grammar.parse(name, inv.text, options)
    # Only flags (or nothing) given: the job's own prompt, as an empty form field means.
    command.prompt = command.prompt or parent.prompt
    with scratch(svc) as folder:
        video = await _parent_video(svc, parent.id, video_url, folder)
    ref = MediaRef(kind="video", url=svc.fetcher.current_url(video_url),
                   duration=video.info.duration)
    request = routing.build_request(command, [ref], svc.settings, seed_source=routing.random_seed,
                                    input_aspect=_made_aspect(parent))
    # No parent kind of its own yet (the store's kinds are reroll/extend/continue): the
    # parent id still links the two jobs.
    await start(svc, inv, request, [None], parent_id=parent.id)


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


async def _forget(svc: Services, inv: Invocation, job_id: int) -> str:
    return await privacy.press_forget(svc, inv)


BUTTONS: dict[str, Callable[[Services, Invocation, int], Awaitable[str | None]]] = {
    "cancel": _cancel, "reroll": _reroll, "extend": _extend, "continue": _continue,
    "delete": _delete, "retake": _retake, "restyle": _restyle, "forget": _forget,
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

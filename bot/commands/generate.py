"""The commands that make videos (video, keyframes, extend, retake, restyle) or price one (quote).

A generation fetches and checks the attachments, builds the request, fits the
images to the endpoint, and starts the job; the job's status card is the
answer from then on. `start`, `fit_images` and `scratch` are shared with the
buttons (actions.py), which start jobs of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from bot import catalog, grammar, media, routing
from bot.commands.services import Handler, Services
from bot.community import moderation, modlog, safety
from bot.errors import QuotaExceeded
from bot.floor import cheapest
from bot.model import GenerationRequest, LocalMedia, MediaKind, MediaRef, ParentKind
from bot.ports import Attachment, ChatPort, Invocation, User

log = logging.getLogger(__name__)
T = TypeVar("T")


async def generate(svc: Services, inv: Invocation, port: ChatPort, *, name: str) -> str | None:
    """Start the job; the answer is what routing changed (a duration rounded to the
    model's list), if anything: the job's card says the rest."""
    command = grammar.parse(name, inv.text, inv.options)
    routing.refuse_file_words(command, inv.text, port.traits, attached=len(inv.attachments))
    attachments = list(inv.attachments) + [
        Attachment(url=ref.url, filename=Path(ref.url).name, kind=ref.kind, role=ref.role)
        for ref in command.media
    ]
    await _cheap_refusals(svc, inv, port, command, attachments)
    with scratch(svc) as folder:
        inputs = await _fetch(svc, attachments, folder, allow_local=port.traits.local_files)
        # The probed length goes along: retake checks its range against a clip's, and
        # audio-to-video is priced on its audio's.
        refs = [MediaRef(kind=item.info.kind, url=item.source, role=att.role,
                         duration=item.info.duration)
                for item, att in zip(inputs, attachments, strict=True)]
        request = routing.build_request(command, refs, svc.settings, seed_source=routing.random_seed,
                                        input_aspect=_shape(inputs), traits=port.traits)
        prepared = await fit_images(svc, request, inputs, folder)
        await start(svc, inv, request, prepared)
    return " ".join(request.notes) or None


async def quote(svc: Services, inv: Invocation, port: ChatPort) -> str:
    """What a job would cost. It needs no bytes: the platform's hints say what is attached."""
    command = grammar.parse("quote", inv.text, inv.options)
    routing.refuse_file_words(command, inv.text, port.traits, attached=len(inv.attachments))
    refs = [MediaRef(kind=_hint_kind(a), url=a.url, role=a.role) for a in inv.attachments]
    request = routing.build_request(command, refs + command.media, svc.settings, traits=port.traits)
    est = request.estimate
    fps = catalog.output_fps(request.endpoint, request.input)
    length = (f"{est.seconds:g} s" if est.seconds
              else f"{est.frames} frames ({est.frames / fps:.1f} s)")
    notes = "".join(f" {note}" for note in request.notes)
    return (
        f"{request.endpoint.title}: about {est.credits} credits (${est.usd:.4f}) for "
        f"{length} at about {est.width}x{est.height}.{notes}"
    )


# The command words that make a video; which model each uses is routing's (`[models]`).
GENERATE_WORDS = ("video", "keyframes", "extend", "retake", "restyle")
HANDLERS: dict[str, Handler] = {
    **{name: partial(generate, name=name) for name in GENERATE_WORDS},
    "quote": quote,
}


async def start(
    svc: Services, inv: Invocation, request: GenerationRequest, inputs: Sequence[LocalMedia | None],
    *, parent_id: int | None = None, parent_kind: ParentKind | None = None,
) -> None:
    """Reserve the quota and start the job (patiently: see `_patiently`)."""
    rules = await safety.apply_checker(svc, inv.place, request)
    job = await _patiently(svc, inv, lambda: svc.runner.start_job(
        inv, request, inputs, parent_id=parent_id, parent_kind=parent_kind))
    await modlog.started(svc, rules, inv, job)
    svc.runner.rt.spawn_background(moderation.budget_check(svc, rules, inv))


async def _cheap_refusals(svc: Services, inv: Invocation, port: ChatPort, command: grammar.Command,
                          attachments: Sequence[Attachment]) -> None:
    """Refuse before anything is downloaded or decoded what needs no media to refuse:
    generation paused, a place where the server lets no job start, a prompt its blocklist
    refuses, a blocked user, the cooldown, too many jobs running, and too few credits left
    for the least this command can cost. A hostile file then costs a refused user nothing."""
    await svc.runner.pauses.refuse(inv.user, inv.place)
    await safety.admit(svc, inv, port.traits, safety.user_texts(command.prompt, command.options))
    floor = cheapest(command, [a.url for a in attachments], svc.settings)
    await _patiently(svc, inv, lambda: svc.quota.precheck(
        inv.user, inv.place, floor, workspace_word=port.traits.workspace_word))


async def _patiently(svc: Services, inv: Invocation, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`, where a patient (scripted) invocation waits out the cooldown and
    concurrency limits instead of being refused, as a person would wait."""
    while True:
        try:
            return await attempt()
        except QuotaExceeded as exc:
            # Money limits are refused as ever: waiting a few seconds would not help.
            if not inv.patient or exc.limit not in ("cooldown", "concurrent"):
                raise
            log.info("scripted command waits: %s", exc)
            await _room_for(svc, inv.user, exc)


async def _room_for(svc: Services, user: User, refusal: QuotaExceeded) -> None:
    if refusal.limit == "cooldown":
        # A real timer: the cooldown is measured in wall time by the quota.
        await asyncio.sleep((refusal.retry_after or 0.0) + 0.05)
        return
    running = [j for j in await svc.store.list_jobs(user.key, limit=50) if not j.state.final]
    if not running:
        return  # one finished between the refusal and now: try again at once
    waits = [asyncio.create_task(svc.runner.wait(j.id)) for j in running]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


def scratch(svc: Services) -> contextlib.AbstractContextManager[Path]:
    # Inputs are uploaded to fal when the job starts; the local copies are never needed again.
    return media.scratch_dir(svc.settings.media)


async def _fetch(
    svc: Services, attachments: Sequence[Attachment], folder: Path, *, allow_local: bool
) -> list[LocalMedia]:
    async def one(index: int, att: Attachment) -> LocalMedia:
        into = folder / str(index)
        into.mkdir()
        return await svc.fetcher.fetch_input(att, into, allow_local=allow_local)

    # Downloads run together: chat CDNs are slow per file, not per connection.
    return list(await asyncio.gather(*(one(i, a) for i, a in enumerate(attachments))))


async def fit_images(
    svc: Services, request: GenerationRequest, inputs: list[LocalMedia], folder: Path
) -> list[LocalMedia | None]:
    """Fit images to what the endpoint wants (exact size, or multiples of 32 in the user's aspect)."""
    endpoint = request.endpoint
    aspect = _requested_aspect(request)
    out: list[LocalMedia | None] = []
    for item in inputs:
        if item.info.kind != "image":
            out.append(item)
            continue
        conf = svc.settings.media
        path = await media.in_budget(conf, media.prepare_image, item.path, folder,
                                     size=endpoint.image_size, aspect=aspect,
                                     limits=media.ImageLimits.of(conf))
        info = await asyncio.to_thread(media.probe, path, conf)
        out.append(LocalMedia(path=path, info=info, source=item.source, filename=item.filename))
    first = next((m for m in out if m is not None and m.info.kind == "image"), None)
    if first is not None:
        # `auto` sizes follow the image's shape: price what will really be made.
        request.estimate = catalog.estimate(
            endpoint, request.input, svc.settings.quota.credits_per_usd,
            svc.settings.prices, input_aspect=first.info.width / first.info.height,
            media_seconds=request.media_seconds,
        )
    return out


def _requested_aspect(request: GenerationRequest) -> str | None:
    aspect = request.input.get("aspect_ratio")
    if isinstance(aspect, str):
        return None if aspect == "auto" else aspect
    size = request.input.get("video_size")
    named = {v: k for k, v in routing.LTX2_ASPECT_SIZES.items()}
    if isinstance(size, str) and size in named and size != "auto":
        return named[size]
    if isinstance(size, dict):
        return f"{int(size['width'])}:{int(size['height'])}"
    return None


def _shape(inputs: Sequence[LocalMedia]) -> float | None:
    """The first input's width/height as probed: where a model would impose its own
    shape, the request follows this one instead (extending a 9:16 clip makes 9:16)."""
    first = next((m.info for m in inputs if m.info.width > 0 and m.info.height > 0), None)
    return first.width / first.height if first is not None else None


def _hint_kind(att: Attachment) -> MediaKind:
    """A quote prices from the platform's hints: nothing is downloaded for it."""
    if att.kind != "unknown":
        return att.kind
    return media.kind_from_hint(att.content_type, att.filename or att.url, default="image")


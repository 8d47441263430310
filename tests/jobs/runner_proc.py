"""A JobRunner in its own process, for the restart test (tests/jobs/test_restart.py).

    python -m tests.jobs.runner_proc --db FILE --sim URL --chat FILE --tmp DIR
        [--submit N] [--pause-first-delivery] [--until-done] [--max-concurrent K]
        [--ltx2-image PNG] [--lease-seconds S] [--daily-credits C] [--until-store-empty]
        [--foreign-host]

`--db` is a SQLite file or a postgresql:// URL.
It talks to a simulator the test runs (so fal's side survives the kill) and
reports through a FileChat: one JSON line per chat call, plus notes
("submitted", "paused", "finished"). `--pause-first-delivery` parks the first
job that reaches delivery forever, so the test can kill the process while a
job is `delivering`. `--until-done` adopts what is free, waits for every job this process drives (never
another live process's), and exits; `--until-store-empty` waits until no job of
the store is unfinished (for the process that must adopt a killed one's jobs).
`--ltx2-image` makes the submitted jobs LTX-2 image-to-video jobs (priced per
megapixel) of that image, reserved with a deliberately wrong estimate (see
`ltx2_request`) so that settling them moves credits. `--foreign-host` registers
this process under another host's name, so that when it is killed the others
cannot see its pid is gone and must wait for its leases to run out (what a
process on another machine costs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import httpx

from bot import catalog, media
from bot.config import Settings
from bot.errors import QuotaExceeded
from bot.fal import FalClient
from bot.jobs import JobRunner, leases
from bot.model import GenerationRequest, JobRecord, LocalMedia, MediaRef, MediaSlot
from bot.pause import Paused
from bot.ports import Invocation, Place, User
from bot.quota import Quota
from bot.store import open_store
from tests.fakes.chat import FileChat

USER = User(platform="console", id="restart", name="Restart")
ROOM = Place(platform="console", channel="general", workspace="local")
# What LTX-2 jobs are reserved at: a size fal will not make (they ask for `auto`).
LTX2_ESTIMATE_SIZE = "square"


def request(settings: Settings, prompt: str) -> GenerationRequest:
    endpoint = catalog.by_name("ltx-video")
    payload = endpoint.input_model.model_validate({"prompt": prompt, "seed": 5}).model_dump(
        mode="json", exclude_none=True
    )
    estimate = catalog.estimate(endpoint, payload, settings.quota.credits_per_usd)
    return GenerationRequest(endpoint=endpoint, input=payload, estimate=estimate, prompt=prompt)


def ltx2_request(settings: Settings, prompt: str, image: LocalMedia) -> GenerationRequest:
    """LTX-2 image-to-video with `video_size: auto`: fal makes the nominal area in the
    image's shape. The estimate prices `LTX2_ESTIMATE_SIZE` instead, on purpose: the
    estimate is whatever the request carries, and the settlement must replace it with
    what the output says was made."""
    endpoint = catalog.by_name("ltx-2")
    payload = endpoint.input_model.model_validate(
        {"prompt": prompt, "seed": 5, "image_url": image.source, "video_size": "auto"}
    ).model_dump(mode="json", exclude_none=True)
    estimate = catalog.estimate(endpoint, {**payload, "video_size": LTX2_ESTIMATE_SIZE},
                                settings.quota.credits_per_usd)
    return GenerationRequest(
        endpoint=endpoint, input=payload, estimate=estimate, prompt=prompt,
        media=[MediaRef(kind="image", url=image.source)],
        slots=[MediaSlot(path=("image_url",), media_index=0)],
    )


async def run(args: argparse.Namespace) -> int:
    if args.foreign_host:
        # The one thing that differs for a process on another machine: its pid means
        # nothing here. Set before the runner's LeaseKeeper reads it.
        leases.host_key = lambda: "elsewhere#1"
    where = "url" if args.db.startswith("postgresql://") else "path"
    settings = Settings.model_validate({
        "database": {where: args.db},
        "media": {"allow_hosts": ["127.0.0.1"], "tmp_dir": args.tmp},
        "jobs": {"edit_interval_seconds": 0.0, "lease_seconds": args.lease_seconds},
        "quota": {"cooldown_seconds": 0, "max_concurrent_jobs": 50,
                  "daily_credits": args.daily_credits,
                  "monthly_credits": 100_000},
        "backend": {"kind": "fal", "fal_queue_url": args.sim, "fal_rest_url": args.sim,
                    "max_concurrent": args.max_concurrent},
    })
    store = await open_store(args.db)
    chat = FileChat(Path(args.chat))
    async with httpx.AsyncClient(timeout=10.0) as http:
        fal = FalClient(http, key=None, queue_url=args.sim, rest_url=args.sim,
                        backoff_base=0.005, backoff_max=0.05, poll_interval=0.02,
                        max_poll_interval=0.1, request_timeout=10.0)
        runner = JobRunner(settings, store, Quota(store, settings), fal, http)
        runner.register_port(chat)
        if args.pause_first_delivery:
            paused: list[int] = []

            async def park(job: JobRecord) -> None:
                if not paused:
                    paused.append(job.id)
                    chat.note(paused=job.id)
                    await asyncio.Event().wait()

            runner.hooks.before_delivery = park
        await runner.start()
        image: LocalMedia | None = None
        if args.ltx2_image:
            path = Path(args.ltx2_image)
            image = LocalMedia(path=path, info=media.probe(path, settings.media),
                               source=path.name, filename=path.name)
        for index in range(1, args.submit + 1):
            prompt = f"restart job {index}"
            inv = Invocation(user=USER, place=ROOM, command="video", text=prompt)
            try:
                if image is not None:
                    await runner.start_job(inv, ltx2_request(settings, prompt, image), [image])
                else:
                    await runner.start_job(inv, request(settings, prompt), [])
            except (QuotaExceeded, Paused):
                chat.note(refused=index)
        chat.note(submitted=args.submit)
        if args.until_store_empty:
            # Other processes give no event to await: poll the store.
            while await store.unfinished_jobs():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        elif not args.until_done:
            await asyncio.Event().wait()  # until the test kills us
        while mine := [job for job in runner.driving() if not job.state.final]:
            await asyncio.gather(*(runner.wait(job.id) for job in mine))
        await runner.stop()
    await store.close()
    chat.note(finished=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--chat", required=True)
    parser.add_argument("--tmp", required=True)
    parser.add_argument("--submit", type=int, default=0)
    parser.add_argument("--max-concurrent", type=int, default=3)
    parser.add_argument("--pause-first-delivery", action="store_true")
    parser.add_argument("--until-done", action="store_true")
    parser.add_argument("--ltx2-image")
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--daily-credits", type=int, default=10_000)
    parser.add_argument("--until-store-empty", action="store_true")
    parser.add_argument("--foreign-host", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

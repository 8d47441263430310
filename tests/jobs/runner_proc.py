"""A JobRunner in its own process, for the restart test (tests/jobs/test_restart.py).

    python -m tests.jobs.runner_proc --db FILE --sim URL --chat FILE --tmp DIR
        [--submit N] [--pause-first-delivery] [--until-done] [--max-concurrent K]

It talks to a simulator the test runs (so fal's side survives the kill) and
reports through a FileChat: one JSON line per chat call, plus notes
("submitted", "paused", "finished"). `--pause-first-delivery` parks the first
job that reaches delivery forever, so the test can kill the process while a
job is `delivering`. `--until-done` resumes, waits for every job, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import httpx

from bot import catalog
from bot.config import Settings
from bot.fal import FalClient
from bot.jobs import JobRunner
from bot.model import GenerationRequest, JobRecord
from bot.ports import Invocation, Place, User
from bot.quota import Quota
from bot.store import open_store
from tests.fakes.chat import FileChat

USER = User(platform="console", id="restart", name="Restart")
ROOM = Place(platform="console", channel="general", workspace="local")


def request(settings: Settings, prompt: str) -> GenerationRequest:
    endpoint = catalog.by_name("ltx-video")
    payload = endpoint.input_model.model_validate({"prompt": prompt, "seed": 5}).model_dump(
        mode="json", exclude_none=True
    )
    estimate = catalog.estimate(endpoint, payload, settings.quota.credits_per_usd)
    return GenerationRequest(endpoint=endpoint, input=payload, estimate=estimate, prompt=prompt)


async def run(args: argparse.Namespace) -> int:
    settings = Settings.model_validate({
        "database": {"path": args.db},
        "media": {"allow_hosts": ["127.0.0.1"], "tmp_dir": args.tmp},
        "jobs": {"edit_interval_seconds": 0.0},
        "quota": {"cooldown_seconds": 0, "max_concurrent_jobs": 50, "daily_credits": 10_000,
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
        for index in range(1, args.submit + 1):
            prompt = f"restart job {index}"
            await runner.submit(Invocation(user=USER, place=ROOM, command="video", text=prompt),
                                request(settings, prompt), [])
        chat.note(submitted=args.submit)
        if not args.until_done:
            await asyncio.Event().wait()  # until the test kills us
        for job in await store.unfinished_jobs():
            await runner.wait(job.id)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

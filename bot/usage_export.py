"""`ltx-bot export-usage`: the ledger's spending per user, workspace or model, as CSV or JSON.

Days are UTC; `--until` is exclusive and defaults to tomorrow (so today is in). Each
row is `{key, name, jobs, credits, usd}`: credits are what the quota charged (each
job's USD price times `[quota] credits_per_usd`, rounded up to a whole credit per
job), usd is fal's price unrounded, so credits / credits_per_usd is at most one
credit per job above usd.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.store import UsageRow, open_store
from bot.store.privacy import ExportBy, usage_export

FIELDS = ("key", "name", "jobs", "credits", "usd")


class ExportError(ValueError):
    """Bad dates or options: the message says which."""


def add_parser(sub: Any, common: Any) -> None:
    """Register `export-usage` on the `ltx-bot` subparsers (`common` adds --config/--user)."""
    p = sub.add_parser("export-usage", help="write spending per user, workspace or model "
                       "(CSV or JSON) from the ledger")
    common(p, top=False)
    p.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="first UTC day included")
    p.add_argument("--until", metavar="YYYY-MM-DD",
                   help="first UTC day NOT included (default: tomorrow, so today is in)")
    p.add_argument("--by", choices=("user", "workspace", "model"), default="user")
    p.add_argument("--format", dest="fmt", choices=("csv", "json"), default="csv")


def parse_day(text: str, flag: str) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ExportError(f"{flag} must be a date as YYYY-MM-DD, not {text!r}") from None
    return day.replace(tzinfo=UTC)


def window(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    start = parse_day(since, "--since")
    if until is None:
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        end = today + timedelta(days=1)
    else:
        end = parse_day(until, "--until")
    if end <= start:
        raise ExportError(f"--until ({end:%Y-%m-%d}) must be after --since ({start:%Y-%m-%d}); "
                          "--until is the first day not included")
    return start, end


async def collect(settings: Settings, by: ExportBy, start: datetime, end: datetime) -> list[UsageRow]:
    store = await open_store(settings.database)
    try:
        return await store.run(lambda tx: usage_export(tx, by, start, end), write=False)
    finally:
        await store.close()


def render(rows: list[UsageRow], fmt: str, out: Any) -> None:
    if fmt == "json":
        out.write(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in rows:
        writer.writerow([r.key, r.name, r.jobs, r.credits, f"{r.usd:.6f}"])


def run(settings: Settings, args: argparse.Namespace, out: Any, err: Any) -> int:
    """The command: 0 with the rows on `out`, 2 with the reason on `err` for bad input."""
    try:
        start, end = window(args.since, args.until, datetime.now(UTC))
    except ExportError as exc:
        err.write(f"ltx-bot export-usage: {exc}\n")
        return 2
    render(asyncio.run(collect(settings, args.by, start, end)), args.fmt, out)
    return 0

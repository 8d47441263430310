"""One card path: the core's cards for every kind of moment, through the Discord embed,
the Slack blocks and the console text; each fact shows exactly once on each, positions
counted from 1."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from adapters.console_render import card_text, status_line
from adapters.discord_render import flatten_message, render_embed
from adapters.slack_render import card_blocks
from bot.jobs import status_card
from bot.model import JobRecord, JobState
from bot.ports import Place, StatusCard
from tests.contract.harness_slack import flatten

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PROMPT = "a fox on a frozen lake"
ELAPSED = "1m 05s"  # since the job was accepted
FAILURE = "fal's safety checker flagged the result. Your credits were refunded."

# What each card must show, as (pattern, times). Every card names its job once.
EVERY_CARD = [(r"Job #42\b", 1)]
LIVE = [(r"(?i)elapsed", 1), (ELAPSED, 1)]
NOT_LIVE = [(r"(?i)elapsed", 0), (r"(?i)\beta\b", 0), ("%", 0)]
CASES: dict[str, tuple[dict[str, object], list[tuple[str, int]]]] = {
    "waiting": ({"state": JobState.WAITING, "local_position": 3}, [
        *LIVE, ("Waiting for a free slot", 1), (r"#3\b", 1), (r"(?i)\beta\b", 0), ("%", 0)]),
    # fal: 4 requests ahead of ours, so ours is the 5th.
    "queued": ({"state": JobState.IN_QUEUE, "queue_position": 4}, [
        *LIVE, ("In fal's queue", 1), (r"#5\b", 1), (r"#4\b", 0), (r"(?i)\beta\b", 0), ("%", 0)]),
    "running": ({"state": JobState.RUNNING, "progress": 0.4,
                 "started_at": NOW - timedelta(seconds=40)}, [
        *LIVE, ("Generating", 1), ("40%", 1), ("%", 1), (r"(?i)\beta\b", 1), (r"#\d", 1)]),
    "done": ({"state": JobState.DONE, "settled_credits": 2, "finished_at": NOW}, [
        *NOT_LIVE, (f"Done in {ELAPSED} · 2 credits", 1)]),
    "failed": ({"state": JobState.FAILED, "error_message": FAILURE}, [
        *NOT_LIVE, (re.escape(FAILURE), 1)]),
    "cancelled": ({"state": JobState.CANCELLED}, [
        *NOT_LIVE, ("Cancelled by Alice", 1)]),
}


def core_card(changes: dict[str, object]) -> StatusCard:
    job = JobRecord(id=42, owner_platform="console", owner_id="alice", owner_name="Alice",
                    place=Place("console", "general"), endpoint_id="fal-ai/ltx-video",
                    input={"prompt": PROMPT}, state=JobState.ACCEPTED, estimate_credits=2,
                    estimate_usd=0.02, created_at=NOW - timedelta(seconds=65), updated_at=NOW,
                    prompt=PROMPT)
    for name, value in changes.items():
        setattr(job, name, value)
    cancelled_by = "Alice" if job.state is JobState.CANCELLED else None
    return status_card(job, at=NOW, cancelled_by=cancelled_by)


def discord_text(card: StatusCard) -> str:
    return flatten_message({"embeds": [render_embed(card, now=NOW).to_dict()]})


def slack_text(card: StatusCard) -> str:
    texts, _buttons = flatten(card_blocks(card, now=NOW))
    return "\n".join(texts)


def console_text(card: StatusCard) -> str:
    # What ConsolePort shows: a status line while in progress, the card's text at the end.
    return card_text(card, NOW) if card.final else status_line(card, NOW)


RENDERERS = {"discord": discord_text, "slack": slack_text, "console": console_text}


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
@pytest.mark.parametrize("case", list(CASES))
def test_each_fact_shows_exactly_once(case: str, renderer: str) -> None:
    changes, expected = CASES[case]
    card = core_card(changes)
    text = RENDERERS[renderer](card)
    counts = {pattern: len(re.findall(pattern, text)) for pattern, _ in EVERY_CARD + expected}
    assert counts == dict(EVERY_CARD + expected), text
    # The narrative once too; the console's one-line status of a card in progress leaves it
    # out (the prompt was typed just above it).
    one_line = renderer == "console" and not card.final
    assert text.count(PROMPT) == (0 if one_line else 1), text


def test_the_cards_carry_live_facts_only_as_fields() -> None:
    for changes, _ in CASES.values():
        card = core_card(changes)
        assert card.lines[0] == f"“{PROMPT}”"
        for line in card.lines:
            assert not re.search(r"(?i)elapsed|\beta\b|%|#\d|in line|fal's queue", line), line

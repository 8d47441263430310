"""StatusCard -> embed and buttons (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.discord_render import format_duration, progress_bar, render, render_embed
from bot.ports import Action, StatusCard

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_progress_bar_and_durations() -> None:
    assert progress_bar(0.0) == "▱" * 16 + " 0%"
    assert progress_bar(0.5) == "▰" * 8 + "▱" * 8 + " 50%"
    assert progress_bar(7) == "▰" * 16 + " 100%"
    assert [format_duration(s) for s in (5, 65, 3725)] == ["5s", "1m 05s", "1h 02m"]


def test_running_card_shows_positions_stage_elapsed_and_a_live_eta() -> None:
    eta = NOW + timedelta(seconds=90)
    card = StatusCard(title="Job #3 · LTX-2", lines=["“a fox”", "Generating…", "Elapsed 1m 00s",
                                                    "ETA 1m 30s"],
                      job_id=3, state="running", stage="generating", progress=0.25,
                      queue_position=0, started_at=NOW - timedelta(seconds=61), eta=eta,
                      actions=[Action("cancel", 3, "Cancel")])
    embed = render_embed(card, now=NOW).to_dict()
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"fal queue": "#1", "Stage": "generating", "Elapsed": "1m 01s",
                      "ETA": f"<t:{int(eta.timestamp())}:R>"}
    description = embed["description"]
    assert "Elapsed 1m" not in description and "ETA 1m" not in description  # shown as fields
    assert "▰▰▰▰▱" in description and "25%" in description
    assert embed["footer"]["text"] == "Job #3 · running"


def test_core_bar_is_not_doubled_and_final_cards_are_plain() -> None:
    card = StatusCard(title="t", lines=["Generating ███░░░ 50%"], progress=0.5)
    assert "▰" not in (render_embed(card).description or "")
    final = StatusCard(title="Job #3 · done", lines=["Done in 12s"], final=True, tone="success",
                       progress=1.0, eta=NOW, link="https://v3.fal.media/x.mp4")
    rendered = render(final, now=NOW)
    data = rendered.embed.to_dict()
    assert "fields" not in data and rendered.view is None
    assert data["description"].endswith("https://v3.fal.media/x.mp4")
    assert data["color"] == 0x57F287


def test_buttons_carry_the_stable_custom_ids() -> None:
    actions = [Action(k, 12, k.title()) for k in ("reroll", "extend", "continue", "delete")]
    view = render(StatusCard(title="done", actions=actions)).view
    assert view is not None and view.timeout is None
    rows = view.to_components()
    ids = [c["custom_id"] for row in rows for c in row["components"]]
    assert ids == ["ltx:job:12:reroll", "ltx:job:12:extend", "ltx:job:12:continue", "ltx:job:12:delete"]


def test_long_text_is_clipped_to_discord_limits() -> None:
    card = StatusCard(title="x" * 400, lines=["y" * 5000])
    embed = render_embed(card)
    assert len(embed.title or "") == 256 and len(embed.description or "") == 4096

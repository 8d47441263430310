"""StatusCard -> embed and buttons (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.discord_render import progress_bar, render, render_embed
from bot.ports import Action, StatusCard, format_duration

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_progress_bar_and_durations() -> None:
    assert progress_bar(0.0) == "▱" * 16 + " 0%"
    assert progress_bar(0.5) == "▰" * 8 + "▱" * 8 + " 50%"
    assert progress_bar(7) == "▰" * 16 + " 100%"
    assert [format_duration(s) for s in (5, 65, 3725)] == ["5s", "1m 05s", "1h 02m"]


def test_running_card_shows_stage_elapsed_and_a_live_eta_as_fields() -> None:
    eta = NOW + timedelta(seconds=90)
    card = StatusCard(title="Job #3 · LTX-2", lines=["“a fox”"],
                      job_id=3, state="running", stage="Generating", progress=0.25,
                      elapsed_since=NOW - timedelta(seconds=61), eta=eta,
                      actions=[Action("cancel", 3, "Cancel")])
    embed = render_embed(card, now=NOW).to_dict()
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Stage": "Generating", "Elapsed": "1m 01s",
                      "ETA": f"<t:{int(eta.timestamp())}:R>"}
    assert embed["description"] == "“a fox”\n" + "▰▰▰▰" + "▱" * 12 + " 25%"
    assert "footer" not in embed  # the title already names the job


def test_positions_are_fields_counted_from_one() -> None:
    waiting = render_embed(StatusCard(title="Job #3", stage="Waiting for a free slot",
                                      local_position=2)).to_dict()
    assert [(f["name"], f["value"]) for f in waiting["fields"]] == [
        ("Stage", "Waiting for a free slot"), ("Place in line", "#2")]
    queued = render_embed(StatusCard(title="Job #3", stage="In fal's queue",
                                     fal_position=1)).to_dict()
    assert [(f["name"], f["value"]) for f in queued["fields"]] == [
        ("Stage", "In fal's queue"), ("fal queue", "#1")]


def test_final_cards_are_plain() -> None:
    final = StatusCard(title="LTX-2", lines=["Done in 12s"], final=True, tone="success",
                       progress=1.0, eta=NOW, link="https://v3.fal.media/x.mp4", job_id=3)
    rendered = render(final, now=NOW)
    data = rendered.embed.to_dict()
    assert "fields" not in data and rendered.view is None and "▰" not in data["description"]
    assert data["description"].endswith("https://v3.fal.media/x.mp4")
    assert data["color"] == 0x57F287
    assert data["footer"]["text"] == "Job #3"  # a summary's title is the model only


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

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from adapters.slack_render import (
    ANIMATE_MODAL,
    ModalMeta,
    animate_modal,
    card_blocks,
    fallback_text,
    parse_action,
    progress_bar,
    prompt_modal,
    read_form,
    slack_date,
)
from bot.ports import Action, StatusCard
from tests.slack.payloads import form_values

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def running_card(**kw: object) -> StatusCard:
    base: dict[str, object] = dict(
        title="Job #7: a <cat> & a dog", lines=["LTX-2 · 4 s · 1280x720"], job_id=7,
        state="running", stage="rendering", progress=0.5, local_position=None,
        fal_position=3, elapsed_since=NOW - timedelta(seconds=75), eta=NOW + timedelta(seconds=40),
        actions=[Action("cancel", 7, "Cancel")])
    base.update(kw)
    return StatusCard(**base)  # type: ignore[arg-type]


def texts(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_progress_card_has_title_context_and_cancel() -> None:
    blocks = card_blocks(running_card(), now=NOW)
    assert blocks[0]["type"] == "section"
    title = blocks[0]["text"]["text"]
    # user text is escaped so a prompt cannot ping people or forge links
    assert "&lt;cat&gt; &amp; a dog" in title and "<cat>" not in title
    context = [e["text"] for e in blocks[1]["elements"]]
    eta = int((NOW + timedelta(seconds=40)).timestamp())
    # Each fact once, in the order every renderer uses; positions count from 1.
    assert context == ["LTX-2 · 4 s · 1280x720", "rendering", "fal queue #3",
                       "`▓▓▓▓▓▓░░░░░░ 50%`", "Elapsed 1m 15s",
                       f"ETA <!date^{eta}^{{time}}|12:00 UTC>"]
    buttons = blocks[-1]
    assert buttons["type"] == "actions"
    assert buttons["elements"][0]["action_id"] == "ltx_cancel"
    assert buttons["elements"][0]["value"] == "7"


def test_final_card_drops_progress_and_eta_and_shows_result_buttons() -> None:
    card = running_card(final=True, tone="success", title="Done", progress=1.0,
                        actions=[Action(k, 7, k.title()) for k in
                                 ("reroll", "extend", "continue", "delete")])
    blocks = card_blocks(card, now=NOW)
    dump = texts(blocks)
    assert "▓" not in dump and "ETA" not in dump and "Elapsed" not in dump
    assert "rendering" not in dump and "fal queue" not in dump  # no live facts when final
    assert blocks[0]["text"]["text"].startswith(":white_check_mark: ")
    ids = [e["action_id"] for e in blocks[-1]["elements"]]
    assert ids == ["ltx_reroll", "ltx_extend", "ltx_continue", "ltx_delete"]
    delete = blocks[-1]["elements"][3]
    assert delete["confirm"]["confirm"]["text"] == "Delete"


def test_limits_are_respected() -> None:
    card = StatusCard(title="x" * 5000, lines=[f"line {i}" for i in range(20)],
                      actions=[Action("reroll", 1, "Re-roll"), Action("reroll", 1, "Again")])
    blocks = card_blocks(card, now=NOW)
    assert len(blocks[0]["text"]["text"]) <= 3000
    elements = blocks[1]["elements"]
    assert len(elements) == 10
    assert "line 19" in elements[-1]["text"]  # overflow is folded in, not dropped
    assert len(blocks[-1]["elements"]) == 1
    assert len(fallback_text(StatusCard(title="y" * 9000))) <= 4000


def test_progress_bar_bounds() -> None:
    assert progress_bar(0) == "░" * 12 + " 0%"
    assert progress_bar(1.7) == "▓" * 12 + " 100%"


def test_slack_date_has_fallback_in_utc() -> None:
    naive = datetime(2026, 5, 1, 12, 30)
    assert slack_date(naive) == f"<!date^{int(naive.replace(tzinfo=UTC).timestamp())}^{{time}}|12:30 UTC>"


def test_parse_action_accepts_job_id_and_custom_id() -> None:
    assert parse_action("ltx_reroll", "12") == ("reroll", 12)
    assert parse_action("ltx_delete", Action("delete", 9, "Delete").custom_id) == ("delete", 9)
    assert parse_action("ltx_explode", "12") is None
    assert parse_action("other", "12") is None
    assert parse_action("ltx_cancel", "twelve") is None


def test_modal_meta_roundtrip_and_limit() -> None:
    meta = ModalMeta(channel="C1", thread="1.2", files=["F1", "F2"], team="T1", kind="extend",
                     job_id=4)
    assert ModalMeta.load(meta.dump()) == meta
    assert ModalMeta.load("not json") is None
    assert ModalMeta.load('{"x": 1}') is None
    big = ModalMeta(channel="C1", files=[f"F{i:010d}" for i in range(1000)])
    assert len(big.dump()) <= 3000
    loaded = ModalMeta.load(big.dump())
    assert loaded is not None and 0 < len(loaded.files) < 1000


def test_animate_modal_and_form_reading() -> None:
    view = animate_modal(ModalMeta(channel="C1"), with_file_input=True)
    assert view["callback_id"] == ANIMATE_MODAL
    block_ids = [b.get("block_id") for b in view["blocks"]]
    assert block_ids == ["files", "prompt", "model", "seconds", "aspect", "audio"]
    assert view["blocks"][0]["element"]["type"] == "file_input"
    no_files = animate_modal(ModalMeta(channel="C1"), with_file_input=False, source_note="cat.png")
    assert "files" not in [b.get("block_id") for b in no_files["blocks"]]

    form = read_form({"state": {"values": form_values(
        "a cat jumps", model="ltx-2", seconds="4", aspect="9:16", audio=True,
        files=[{"id": "F1", "name": "cat.png"}])}})
    assert form.text() == "a cat jumps --model ltx-2 --seconds 4 --aspect 9:16 --audio"
    assert [f["id"] for f in form.files] == ["F1"]
    plain = read_form({"state": {"values": form_values("just this")}})
    assert plain.text() == "just this" and plain.files == []


def test_prompt_modal_names_the_job() -> None:
    view = prompt_modal("extend", 5, ModalMeta(channel="C1", kind="extend", job_id=5))
    assert view["title"]["text"] == "Extend job #5"
    assert ModalMeta.load(view["private_metadata"]) == ModalMeta(channel="C1", kind="extend",
                                                                 job_id=5)

"""The same scenarios against every adapter's ChatPort (and the FakeChat the core tests use)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from bot.ports import Action, StatusCard
from bot.throttle import EditThrottle

HARNESSES = sorted(p.stem for p in Path(__file__).parent.glob("harness_*.py"))


@pytest.fixture(params=HARNESSES)
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    module = importlib.import_module(f"tests.contract.{request.param}")
    async with module.harness() as harness:
        yield harness


def _card(title: str, *, job_id: int = 7, final: bool = False, actions: list[Action] | None = None,
          progress: float | None = None) -> StatusCard:
    return StatusCard(title=title, lines=[f"line for {title}"], job_id=job_id, state="running",
                      progress=progress, final=final, actions=actions or [])


def _tiny_mp4(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), (i * 30, 0, 0)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


async def test_post_then_edit_shows_latest_card(h: Any) -> None:
    ref = await h.port.post(h.place, _card("Queued", actions=[Action("cancel", 7, "Cancel")]))
    shown = await h.shown(ref)
    assert "Queued" in shown["text"]
    assert any("cancel" in b and "7" in b for b in shown["buttons"])
    ref2 = await h.port.edit(ref, _card("Running 40%", progress=0.4))
    ref3 = await h.port.edit(ref2, _card("Done", final=True))
    shown = await h.shown(ref3)
    assert "Done" in shown["text"] and "Running" not in shown["text"]


async def test_many_edits_end_on_the_final_state(h: Any) -> None:
    ref = await h.port.post(h.place, _card("step 0"))
    for i in range(1, 15):
        ref = await h.port.edit(ref, _card(f"step {i}", progress=i / 15))
    ref = await h.port.edit(ref, _card("finished", final=True))
    assert "finished" in (await h.shown(ref))["text"]


async def test_edits_through_the_core_throttle_end_on_the_final_state(h: Any) -> None:
    ref = await h.port.post(h.place, _card("step 0"))
    current = ref

    async def show(card: StatusCard) -> None:
        nonlocal current
        current = await h.port.edit(current, card)

    # The port's own floor would make this test slow; the pacing is the throttle's own test.
    throttle: EditThrottle[StatusCard] = EditThrottle(show, 0.05)
    throttle.sent()
    for i in range(1, 15):
        throttle.update(_card(f"step {i}", progress=i / 15))
    await throttle.finish(_card("finished", final=True))
    shown = await h.shown(current)
    assert "finished" in shown["text"] and "step" not in shown["text"]


async def test_send_video_carries_file_summary_and_buttons(h: Any, tmp_path: Path) -> None:
    video = _tiny_mp4(tmp_path / "result.mp4")
    assert video.stat().st_size < h.port.upload_limit(h.place)
    actions = [Action(k, 9, k.title()) for k in ("reroll", "extend", "continue", "delete")]  # type: ignore[arg-type]
    ref = await h.port.send_video(h.place, video, _card("Job #9 done: seed 42", job_id=9, final=True, actions=actions))
    shown = await h.shown(ref)
    assert any(name.endswith(".mp4") for name in shown["files"])
    assert "seed 42" in shown["text"]
    for kind in ("reroll", "extend", "continue", "delete"):
        assert any(kind in b and "9" in b for b in shown["buttons"]), (kind, shown["buttons"])


async def test_send_image_poster(h: Any, tmp_path: Path) -> None:
    poster = tmp_path / "poster.jpg"
    Image.new("RGB", (64, 36), (200, 10, 10)).save(poster)
    card = _card("Too large to upload", final=True)
    card.link = "http://127.0.0.1:9/files/result.mp4"
    ref = await h.port.send_image(h.place, poster, card)
    shown = await h.shown(ref)
    assert any(name.endswith((".jpg", ".jpeg", ".png")) for name in shown["files"])
    assert "Too large" in shown["text"]


async def test_tell_is_private_to_the_user(h: Any) -> None:
    await h.port.tell(h.user, h.place, "You have 12 credits left.")
    assert any("12 credits" in note for note in await h.notes(h.user))


async def test_upload_limit_is_positive(h: Any) -> None:
    assert h.port.upload_limit(h.place) > 1024 * 1024


async def test_delete_removes_message(h: Any) -> None:
    ref = await h.port.post(h.place, _card("to delete"))
    assert await h.exists(ref)
    await h.port.delete(ref)
    assert not await h.exists(ref)

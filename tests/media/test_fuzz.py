"""Damaged files of every accepted kind: the only outcomes are a clean probe or a MediaError
(never another exception that would surface as "something went wrong" with an error id)."""

from __future__ import annotations

import contextlib
import io
import random
from pathlib import Path

import pytest
from PIL import Image

from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError


def samples(clips: dict[str, Path]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for fmt, pil in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP"), ("gif", "GIF")):
        buf = io.BytesIO()
        Image.effect_noise((120, 90), 50).convert("RGB").save(buf, pil)
        out[fmt] = buf.getvalue()
    for fmt in ("mp4", "mov", "webm"):
        out[fmt] = clips[fmt].read_bytes()
    return out


def damage(data: bytes, rng: random.Random, trial: int) -> bytes:
    mutated = bytearray(data)
    if trial % 3 == 0:
        return bytes(mutated[: rng.randint(1, len(mutated) - 1)])
    if trial % 3 == 1:
        for _ in range(rng.randint(1, 20)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        return bytes(mutated)
    start = rng.randrange(len(mutated))
    mutated[start:start + 200] = rng.randbytes(200)
    return bytes(mutated)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif", "mp4", "mov", "webm"])
def test_damaged_files_only_ever_raise_media_error(
    fmt: str, clips: dict[str, Path], media_settings: MediaSettings, tmp_path: Path
) -> None:
    rng = random.Random(fmt)  # seeded: a failure reproduces
    original = samples(clips)[fmt]
    path = tmp_path / "damaged"
    outcomes = {"ok": 0, "refused": 0}
    for trial in range(60):
        path.write_bytes(damage(original, rng, trial))
        try:
            media.probe(path, media_settings)
            outcomes["ok"] += 1
        except MediaError:
            outcomes["refused"] += 1
    # Every cut file (a third of the trials) is refused.
    assert outcomes["refused"] >= 20


@pytest.mark.parametrize("fmt", ["mp4", "mov", "webm"])
def test_damaged_results_only_ever_raise_media_error(
    fmt: str, clips: dict[str, Path], tmp_path: Path
) -> None:
    # Outputs are trusted more than inputs, but a damaged download must still end in words.
    rng = random.Random(f"out-{fmt}")
    original = clips[fmt].read_bytes()
    path = tmp_path / "damaged"
    for trial in range(30):
        path.write_bytes(damage(original, rng, trial))
        for attempt in (lambda: media.probe_output(path),
                        lambda: media.last_frame(path, tmp_path / "frames"),
                        lambda: media.fit_video(path, tmp_path / "fit", 4000)):
            with contextlib.suppress(MediaError):
                attempt()

"""The JSON examples in the endpoint docs (shared/seeds), which are the spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).parents[3] / "shared" / "seeds"

# doc file -> catalog key
SEED_FILES = {
    "ltx-video-text-to-video.txt": "ltx-video",
    "ltx-video-image-to-video.txt": "ltx-video-i2v",
    "ltx-video-13b-distilled-multiconditioning.txt": "ltx-13b",
    "ltx-video-v097-extend.txt": "ltx-extend",
    "ltx-2-19b-image-to-video.txt": "ltx-2",
}


def json_blocks(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts on a line of its own (bare or inside a ```json fence)."""
    decoder = json.JSONDecoder()
    blocks: list[dict[str, Any]] = []
    offset = 0
    consumed_until = 0
    for line in text.splitlines(keepends=True):
        start = offset
        offset += len(line)
        if start < consumed_until or line.strip() != "{":
            continue
        try:
            value, end = decoder.raw_decode(text, start + line.index("{"))
        except ValueError:
            continue
        if isinstance(value, dict):
            blocks.append(value)
            consumed_until = end
    return blocks


def is_output(block: dict[str, Any]) -> bool:
    video = block.get("video")
    return isinstance(video, dict) and "url" in video


def examples(filename: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(input examples, output examples) of one doc. Raises if the doc is missing."""
    text = (SEEDS / filename).read_text(encoding="utf-8")
    blocks = json_blocks(text)
    return [b for b in blocks if not is_output(b)], [b for b in blocks if is_output(b)]

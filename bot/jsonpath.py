"""Setting a value deep inside JSON-like data: `set_path(data, ("video", "video_url"), url)`.

The one setter for nested dicts and lists: routing places attachment URLs in a
fal input with it, `GenerationRequest.with_urls` swaps in uploaded URLs, and the
config loader files environment overrides under their sections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JsonPath = tuple[str | int, ...]


class PathError(TypeError):
    """A step of the path runs into a value that holds no such key (a string, a number,
    or a list asked for a name). `key` is the step whose value that is, for messages
    such as "backend is not a section"."""

    def __init__(self, path: Sequence[str | int], key: str | int) -> None:
        super().__init__(f"{'.'.join(map(str, path))}: {key} is not a section")
        self.key = key


def set_path(data: Any, path: Sequence[str | int], value: Any) -> None:
    """`data[p0][p1]...[pn] = value`, making the dicts that are missing on the way."""
    node = data
    for depth, key in enumerate(path):
        if not _holds(node, key):
            raise PathError(path, path[depth - 1] if depth else key)
        if depth == len(path) - 1:
            node[key] = value
        else:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]


def _holds(node: Any, key: str | int) -> bool:
    return isinstance(node, dict) or (isinstance(node, list) and isinstance(key, int))

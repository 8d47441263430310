"""`set_path`, the one setter for nested data (fal inputs, config overrides)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.jsonpath import PathError, set_path


def test_makes_the_missing_sections_and_walks_lists() -> None:
    data: dict[str, Any] = {"images": [{"image_url": "a"}]}
    set_path(data, ("video", "video_url"), "v")
    set_path(data, ("images", 0, "image_url"), "b")
    set_path(data, ("prompt",), "a fox")
    assert data == {"images": [{"image_url": "b"}], "video": {"video_url": "v"}, "prompt": "a fox"}


def test_refuses_to_step_through_a_value() -> None:
    data: dict[str, Any] = {"backend": "fal"}
    with pytest.raises(PathError) as err:
        set_path(data, ("backend", "kind"), "sim")
    assert err.value.key == "backend"
    assert data == {"backend": "fal"}


def test_a_list_takes_only_numbers() -> None:
    data: dict[str, Any] = {"users": ["a"]}
    with pytest.raises(PathError) as err:
        set_path(data, ("users", "admin"), "b")
    assert err.value.key == "users"

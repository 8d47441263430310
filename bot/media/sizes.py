"""Sizes in the words people read: every size a user sees goes through `format_size`."""

from __future__ import annotations

MiB = 1024 * 1024


def format_size(n: float) -> str:
    """A size people read at a glance: `850 KB`, `9.2 MB`."""
    if n < MiB / 10:
        return f"{max(1, round(n / 1024))} KB"
    value = n / MiB
    text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return (text[:-2] if text.endswith(".0") else text) + " MB"


def too_big(size: float, limit: float) -> str:
    """The one way of saying a file is over a limit."""
    return f"That file is {format_size(size)}; the limit is {format_size(limit)}."

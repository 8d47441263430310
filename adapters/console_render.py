"""StatusCard -> terminal text: one status line per card in progress, the card's plain
text (with its buttons as commands to type) when it is final.

On an interactive terminal the cards in progress stay above the input line
(`TerminalRenderer`, drawn by the prompt); otherwise each change is one plain
line (`PlainRenderer`), so piped runs and tests read stable text. Both show the
card's live facts from `StatusCard.facts`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TextIO

from bot.ports import Action, StatusCard, progress_bar

BAR_WIDTH = 20


def action_hint(action: Action) -> str:
    """The console command that does what a card's button does."""
    if action.kind in ("extend", "continue"):
        return f"/{action.kind} #{action.job_id} <prompt>"
    if action.kind == "forget":  # a forget-me confirmation: it names no job
        return "/forget-me confirm"
    if action.kind == "retake":
        return f"/retake #{action.job_id} --from S --to S <prompt>"
    return f"/{action.kind} {action.job_id}"


def card_text(card: StatusCard, now: datetime | None = None) -> str:
    """A card as text, with its buttons as the commands to type."""
    text = card.text(now)
    if card.actions:
        text += "\n" + "  ".join(f"{a.label}: {action_hint(a)}" for a in card.actions)
    return text


def status_line(card: StatusCard, now: datetime | None = None) -> str:
    """One line for a card in progress: `Job #3 · LTX-2 · Generating · 40% · Elapsed 5s`."""
    return " · ".join([card.title, *(fact.plain for fact in card.facts(now))])


class Renderer(Protocol):
    def line(self, text: str) -> None: ...
    def progress(self, key: str, card: StatusCard) -> None: ...
    def done(self, key: str) -> None: ...
    def close(self) -> None: ...


class PlainRenderer:
    """One line per change; for pipes, logs and tests."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            self._out.write(text.rstrip("\n") + "\n")
            self._out.flush()

    def progress(self, key: str, card: StatusCard) -> None:
        text = status_line(card)
        if self._last.get(key) != text:
            self._last[key] = text
            self.line(text)

    def done(self, key: str) -> None:
        self._last.pop(key, None)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._out.flush()


class TerminalRenderer:
    """For an interactive terminal: lines are printed (above the input line, when `out`
    is prompt_toolkit's stdout proxy), while the cards in progress are only kept here;
    the prompt draws them above its input line (`status_lines`) on every refresh, so
    progress never overwrites what is being typed. `invalidate` asks for a redraw."""

    def __init__(self, out: TextIO, invalidate: Callable[[], None] | None = None) -> None:
        self._plain = PlainRenderer(out)
        self._cards: dict[str, StatusCard] = {}
        self.invalidate = invalidate or (lambda: None)

    def line(self, text: str) -> None:
        self._plain.line(text)

    def progress(self, key: str, card: StatusCard) -> None:
        if key not in self._cards:
            # The title (job and model) once, as a record above; the live line stays short.
            self.line(card.title)
        self._cards[key] = card
        self.invalidate()

    def done(self, key: str) -> None:
        if self._cards.pop(key, None) is not None:
            self.invalidate()

    def close(self) -> None:
        self._plain.close()

    def status_lines(self, width: int = 80, now: datetime | None = None) -> list[str]:
        """One line per card in progress, cut to `width`: `#3 Generating ━━━──── 40% · ETA 5s`."""
        return [_cut(live_line(card, now), width) for card in list(self._cards.values())]


def live_line(card: StatusCard, now: datetime | None = None) -> str:
    """A card in progress on one short line, with a bar once fal reports progress."""
    facts = card.facts(now)
    label = f"#{card.job_id}" if card.job_id is not None else card.title
    head = " ".join([label, *(f.value for f in facts if f.kind == "stage")])
    if card.progress is not None:
        head += " " + progress_bar(card.progress, BAR_WIDTH, "━", "─")
    rest = [f.plain for f in facts if f.kind not in ("stage", "progress")]
    return " · ".join([head, *rest])


def _cut(text: str, width: int) -> str:
    # A status line that wrapped would push the input line around on every refresh.
    width = max(10, width - 1)
    return text if len(text) <= width else text[: width - 1] + "…"

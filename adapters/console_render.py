"""StatusCard -> terminal text: one status line per card in progress, the card's plain
text (with its buttons as commands to type) when it is final.

A live rich progress bar per job when stdout is a terminal (`LiveRenderer`),
one plain line per change when it is not (`PlainRenderer`), so piped runs and
tests read stable text. Both show the card's live facts from `StatusCard.facts`.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from bot.ports import Action, StatusCard

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

# rich counts in whole steps: a thousand of them gives 0.1 % resolution.
BAR_STEPS = 1000


def action_hint(action: Action) -> str:
    """The console command that does what a card's button does."""
    if action.kind in ("extend", "continue"):
        return f"/{action.kind} #{action.job_id} <prompt>"
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


class LiveRenderer:
    """A rich progress bar per job: stage, bar and percent, then the other facts."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._console: Console = Console(file=out, highlight=False, markup=False)
        self._progress: Progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            console=self._console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started = False

    def line(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)

    def progress(self, key: str, card: StatusCard) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        # The bar line stays short so the bar itself fits an 80-column terminal; the
        # card's title (job and model) is printed once above it instead.
        label = f"#{card.job_id}" if card.job_id is not None else card.title
        facts = card.facts()
        stage = " ".join(fact.value for fact in facts if fact.kind == "stage")
        fields: dict[str, Any] = {"info": " · ".join(
            fact.plain for fact in facts if fact.kind not in ("stage", "progress"))}
        # total=None makes rich draw an indeterminate (pulsing) bar until fal reports progress.
        total = BAR_STEPS if card.progress is not None else None
        completed = round((card.progress or 0.0) * BAR_STEPS)
        description = f"{label} {stage}".strip()
        task = self._tasks.get(key)
        if task is None:
            self.line(card.title)
            self._tasks[key] = self._progress.add_task(
                description, total=total, completed=completed, **fields
            )
        else:
            self._progress.update(
                task, description=description, total=total, completed=completed, **fields
            )

    def done(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
        if not self._tasks and self._started:
            self._progress.stop()
            self._started = False

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False

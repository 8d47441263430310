"""The prompt's history in process, with prompt_toolkit's pipe input: keys that arrive
together are handled in one go, before anything is drawn again."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from prompt_toolkit.application import create_app_session
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from adapters.console_prompt import AbovePrompt, PromptScreen

BOUND = 30.0  # an upper bound for each wait, never an expectation of speed


async def _until(condition: Callable[[], bool]) -> None:
    # prompt_toolkit's state has no event to wait on: look again until it holds.
    async with asyncio.timeout(BOUND):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_up_right_after_enter_recalls_that_line() -> None:
    # A quick typist presses Enter and then Up before the prompt is drawn again (the
    # terminal is busy printing the answer): Up must still bring back the line just sent.
    with create_pipe_input() as keys, create_app_session(input=keys, output=DummyOutput()):
        output = DummyOutput()
        screen = PromptScreen(AbovePrompt(io.StringIO(), output), output,
                              InMemoryHistory(["an earlier line"]), asyncio.Event())
        first = asyncio.create_task(screen.read())
        buffer = screen._session.default_buffer
        await _until(lambda: buffer.working_index == 1)  # the prompt is up, history loaded
        keys.send_text("quota\r\x1b[A\r\x1b[A\x1b[A\r")
        assert await first == "quota"
        assert await screen.read() == "quota"
        assert await screen.read() == "an earlier line"  # Up twice: past the repeated line
        await screen.end_input()

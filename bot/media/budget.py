"""The per-process budget for checking and preparing inputs.

Probing and preparing a picture is where a hostile file costs memory and CPU (up to
`ImageLimits.max_memory` each). `in_budget` runs such work in a thread, at most
`[media] prepare_concurrency` at once in this process, so many hostile messages at
once queue instead of stacking their costs. The rest waits in the event loop, not in
a thread, so other work in threads goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import weakref
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from bot.config import MediaSettings

P = ParamSpec("P")
T = TypeVar("T")

# One semaphore per event loop (a process runs one; tests run many, one after another).
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where there is one (None elsewhere: musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim


def _run_and_give_back(call: Callable[[], T]) -> T:
    try:
        return call()
    finally:
        # A decoded picture is freed into this worker thread's malloc arena, which glibc
        # keeps: after a few pictures on a few threads the process would hold several
        # pictures' worth of memory it no longer uses (measured: 430 MB instead of 250 MB
        # after eight 6000x6000 PNGs). Give the free pages back to the system.
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


def _slots(size: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    held = _SLOTS.get(loop)
    if held is None or held[0] != size:
        held = (size, asyncio.Semaphore(size))
        _SLOTS[loop] = held
    return held[1]


async def in_budget(settings: MediaSettings, fn: Callable[P, T], /, *args: P.args,
                    **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in a thread once one of `settings.prepare_concurrency` slots is
    free. A cancelled caller stops waiting, but the slot stays taken until the thread
    really ends: a thread cannot be stopped, and its memory is spent until it does."""
    slots = _slots(settings.prepare_concurrency)
    await slots.acquire()
    try:
        work = asyncio.ensure_future(asyncio.to_thread(
            _run_and_give_back, functools.partial(fn, *args, **kwargs)))
    except BaseException:
        slots.release()
        raise
    work.add_done_callback(lambda done: _finished(done, slots))
    return await asyncio.shield(work)


def _finished(work: asyncio.Future[T], slots: asyncio.Semaphore) -> None:
    slots.release()
    if not work.cancelled():
        work.exception()  # retrieved: a caller that was cancelled will never read it

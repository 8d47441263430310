"""Chat ports for tests: real `ChatPort` implementations that record every call.

`FakeChat` keeps the calls in memory (cards deep-copied at call time, the
bytes of every uploaded file when `keep_bytes`), and lets a test await a
condition ("a video was sent for job 3") instead of sleeping. `FileChat`
appends one JSON line per call to a file, so a test can read what a bot in
another process delivered, across restarts of that process.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bot.ports import MessageRef, Place, PlatformTraits, StatusCard, User

MiB = 1024 * 1024
CallKind = Literal["post", "edit", "send_video", "send_image", "delete", "tell", "private_file",
                   "admin_notice"]


@dataclass
class ChatCall:
    seq: int
    kind: CallKind
    place: Place | None = None
    ref: MessageRef | None = None  # the message the call created or targeted (after the call)
    old_ref: MessageRef | None = None  # edit: the message that was asked for
    card: StatusCard | None = None
    data: bytes | None = None
    size: int | None = None
    filename: str | None = None
    user: User | None = None
    text: str | None = None
    at: float = 0.0  # time.monotonic() of the call

    @property
    def job_id(self) -> int | None:
        return self.card.job_id if self.card is not None else None

    @property
    def state(self) -> str | None:
        return self.card.state if self.card is not None else None


class FakeChat:
    """An in-memory chat platform. Message ids are "m1", "m2", ... in posting order."""

    def __init__(
        self,
        platform: str = "console",
        *,
        upload_limit: int = 50 * MiB,
        keep_bytes: bool = True,
        traits: PlatformTraits | None = None,
    ) -> None:
        self.platform = platform
        # Slack-like fakes type commands as "/ltx ..."; the console takes local paths.
        self.traits = traits or PlatformTraits(
            command_prefix="/ltx " if platform == "slack" else "/",
            local_files=platform == "console",
        )
        self.limit = upload_limit
        self.keep_bytes = keep_bytes
        self.calls: list[ChatCall] = []
        self.messages: dict[str, StatusCard | None] = {}
        self.deleted: set[str] = set()
        # Message ids that can no longer be edited: editing one posts a new message
        # (as an adapter does when an interaction token has expired).
        self.stale: set[str] = set()
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._changed: asyncio.Event | None = None

    # ------------------------------------------------------------ ChatPort

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        ref = self._new_ref(place)
        self.messages[ref.id] = copy.deepcopy(card)
        self._record(ChatCall(0, "post", place=place, ref=ref, card=copy.deepcopy(card)))
        return ref

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        if ref.id not in self.messages or ref.id in self.deleted:
            raise LookupError(f"message {ref.id} does not exist")
        target = ref
        if ref.id in self.stale:
            target = self._new_ref(Place(platform=self.platform, channel=ref.channel))
        self.messages[target.id] = copy.deepcopy(card)
        self._record(ChatCall(0, "edit", ref=target, old_ref=ref, card=copy.deepcopy(card)))
        return target

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send("send_video", place, path, card)

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send("send_image", place, path, card)

    async def delete(self, ref: MessageRef) -> None:
        if ref.id not in self.messages or ref.id in self.deleted:
            raise LookupError(f"message {ref.id} does not exist")
        self.deleted.add(ref.id)
        self._record(ChatCall(0, "delete", ref=ref))

    def upload_limit(self, place: Place) -> int:
        return self.limit

    async def tell(self, user: User, place: Place, text: str) -> None:
        self._record(ChatCall(0, "tell", place=place, user=user, text=text))

    async def send_private_file(self, user: User, place: Place, filename: str, data: bytes,
                                text: str) -> None:
        self._record(ChatCall(0, "private_file", place=place, user=user, text=text,
                              filename=filename, data=data, size=len(data)))

    async def notify_admins(self, text: str) -> int:
        """`bot.ports.AdminNotices`: recorded; one admin told."""
        self._record(ChatCall(0, "admin_notice", text=text))
        return 1

    # ------------------------------------------------------------ queries

    def of_kind(self, kind: CallKind, job_id: int | None = None) -> list[ChatCall]:
        return [c for c in self.calls if c.kind == kind and (job_id is None or c.job_id == job_id)]

    def videos(self, job_id: int | None = None) -> list[ChatCall]:
        return self.of_kind("send_video", job_id)

    def images(self, job_id: int | None = None) -> list[ChatCall]:
        return self.of_kind("send_image", job_id)

    def status_cards(self, job_id: int) -> list[StatusCard]:
        """Every card the job's status message showed, in order (post and edits)."""
        return [c.card for c in self.calls
                if c.kind in ("post", "edit") and c.card is not None and c.card.job_id == job_id]

    def last_status(self, job_id: int) -> StatusCard:
        cards = self.status_cards(job_id)
        assert cards, f"no status card for job {job_id}"
        return cards[-1]

    def delivered(self, job_id: int) -> bool:
        return any(c.job_id == job_id for c in self.calls if c.kind in ("send_video", "send_image"))

    def final_card_shown(self, job_id: int) -> bool:
        return any(card.final for card in self.status_cards(job_id))

    async def wait_for(
        self, predicate: Callable[[], bool], *, what: str = "condition", within: float = 30.0
    ) -> None:
        """Until `predicate()` holds (checked after every call). Fails after `within`
        seconds, as a guard against a hung test, not as a measurement."""
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    await self._event().wait()
        except TimeoutError:
            raise AssertionError(
                f"gave up waiting for {what}; calls: {[(c.kind, c.job_id, c.state) for c in self.calls]}"
            ) from None

    async def wait_video(self, job_id: int, within: float = 30.0) -> ChatCall:
        await self.wait_for(lambda: bool(self.videos(job_id)), what=f"a video of job {job_id}",
                            within=within)
        return self.videos(job_id)[0]

    async def wait_final(self, job_id: int, within: float = 30.0) -> StatusCard:
        await self.wait_for(lambda: self.final_card_shown(job_id),
                            what=f"the final card of job {job_id}", within=within)
        return self.last_status(job_id)

    # ------------------------------------------------------------ internals

    def _new_ref(self, place: Place) -> MessageRef:
        return MessageRef(platform=self.platform, channel=place.channel, id=f"m{next(self._ids)}")

    async def _send(
        self, kind: CallKind, place: Place, path: Path, card: StatusCard
    ) -> MessageRef:
        size = (await asyncio.to_thread(path.stat)).st_size
        if size > self.limit:
            raise ValueError(f"{path.name} is {size} bytes, over the {self.limit} byte limit")
        data = await asyncio.to_thread(path.read_bytes) if self.keep_bytes else None
        ref = self._new_ref(place)
        self.messages[ref.id] = copy.deepcopy(card)
        self._record(ChatCall(0, kind, place=place, ref=ref, card=copy.deepcopy(card), data=data,
                              size=size, filename=path.name))
        return ref

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _record(self, call: ChatCall) -> None:
        call.seq = next(self._seq)
        call.at = time.monotonic()
        self.calls.append(call)
        # Swap before setting, so every current waiter wakes once and re-checks.
        old, self._changed = self._changed, asyncio.Event()
        if old is not None:
            old.set()


# ---------------------------------------------------------------- across processes


def _card_json(card: StatusCard) -> dict[str, Any]:
    data = asdict(card)
    for key in ("elapsed_since", "eta"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return data


class FileChat:
    """A ChatPort that appends one JSON object per call to `path` (flushed at once)."""

    def __init__(self, path: Path, platform: str = "console", *, upload_limit: int = 50 * MiB) -> None:
        self.path = path
        self.platform = platform
        self.traits = PlatformTraits()
        self.limit = upload_limit
        self._ids = itertools.count(1)
        # Ids must stay unique across processes writing the same file.
        self._prefix = f"p{os.getpid()}-"

    def _write(self, entry: dict[str, Any]) -> None:
        entry["pid"] = os.getpid()
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()

    def _ref(self, place: Place) -> MessageRef:
        return MessageRef(platform=self.platform, channel=place.channel,
                          id=f"{self._prefix}{next(self._ids)}")

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        ref = self._ref(place)
        self._write({"call": "post", "ref": ref.id, "job_id": card.job_id, "card": _card_json(card)})
        return ref

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        self._write({"call": "edit", "ref": ref.id, "job_id": card.job_id, "card": _card_json(card)})
        return ref

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return self._send("send_video", place, path, card)

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return self._send("send_image", place, path, card)

    def _send(self, kind: str, place: Place, path: Path, card: StatusCard) -> MessageRef:
        data = path.read_bytes()
        ref = self._ref(place)
        self._write({"call": kind, "ref": ref.id, "job_id": card.job_id, "size": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "card": _card_json(card)})
        return ref

    async def delete(self, ref: MessageRef) -> None:
        self._write({"call": "delete", "ref": ref.id})

    def upload_limit(self, place: Place) -> int:
        return self.limit

    async def tell(self, user: User, place: Place, text: str) -> None:
        self._write({"call": "tell", "user": user.key, "text": text})

    # A marker a test process can wait for (e.g. "paused before delivering job 1").
    def note(self, **entry: Any) -> None:
        self._write({"call": "note", **entry})


def read_calls(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)

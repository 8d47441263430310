"""Domain types that cross rooms: requests (grammar -> jobs), media facts (media -> all),
and job records (store -> jobs, commands, adapters).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from bot.catalog import Endpoint, Estimate
from bot.jsonpath import JsonPath, set_path
from bot.ports import MessageRef, Place

MediaKind = Literal["image", "video", "audio"]


@dataclass(frozen=True)
class MediaRef:
    """An input as the grammar sees it: its kind and where it is (URL or local path).

    `role` "end" marks the end image of a first-to-last-frame clip (--end). `duration`
    is the probed length in seconds of a clip or an audio file, once it is known: retake
    checks its range against it and audio-to-video is priced on it."""

    kind: MediaKind
    url: str
    role: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class MediaSlot:
    """Where in the fal input an attachment's URL goes (e.g. ("images", 1, "image_url"))."""

    path: JsonPath
    media_index: int


@dataclass
class GenerationRequest:
    """What one generation will run: the endpoint, its validated fal input, and the price.

    `slots` say where each attachment's URL sits in `input`, so the runner can put
    the uploaded copies there (`with_urls`) without knowing the endpoint's layout.
    """

    endpoint: Endpoint
    input: dict[str, Any]  # validated against endpoint.input_model, JSON-ready, no None values
    estimate: Estimate
    media: list[MediaRef] = field(default_factory=list)
    slots: list[MediaSlot] = field(default_factory=list)
    prompt: str = ""
    notes: list[str] = field(default_factory=list)  # what routing changed, to tell the user
    media_seconds: float | None = None  # the input audio's length (audio-to-video's price)

    def with_urls(self, urls: list[str]) -> dict[str, Any]:
        """A copy of `input` with each slot pointing at `urls[slot.media_index]`."""
        data = copy.deepcopy(self.input)
        for slot in self.slots:
            set_path(data, slot.path, urls[slot.media_index])
        return data

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint.endpoint_id,
            "input": self.input,
            "estimate": {"usd": self.estimate.usd, "credits": self.estimate.credits},
        }


@dataclass(frozen=True)
class MediaInfo:
    """What the bytes really are (sniffed and probed, never taken from names or headers)."""

    kind: MediaKind
    format: str  # png, jpeg, webp, gif, mp4, webm, mov, mp3, wav, m4a, aac, ogg, flac
    size_bytes: int
    width: int
    height: int
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    has_audio: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None

    @property
    def content_type(self) -> str:
        return {
            "png": "image/png",
            "jpeg": "image/jpeg",
            "webp": "image/webp",
            "gif": "image/gif",
            "mp4": "video/mp4",
            "webm": "video/webm",
            "mov": "video/quicktime",
            "mp3": "audio/mpeg",
            "wav": "audio/wav",
            "m4a": "audio/mp4",
            "aac": "audio/aac",
            "ogg": "audio/ogg",
            "flac": "audio/flac",
        }.get(self.format, "application/octet-stream")


@dataclass
class LocalMedia:
    """A downloaded, validated input. `path` is a temporary file the caller owns."""

    path: Path
    info: MediaInfo
    source: str  # where it came from (never a credential-bearing URL in logs)
    filename: str = ""


class JobState(StrEnum):
    """Where a job is in its life; the runner stores each change before acting on it."""

    ACCEPTED = "accepted"
    WAITING = "waiting"  # local admission queue
    SUBMITTED = "submitted"
    IN_QUEUE = "in_queue"  # at fal, queued
    RUNNING = "running"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


ParentKind = Literal["reroll", "extend", "continue"]


@dataclass
class JobRecord:
    """One job as the store keeps it: who asked where, what runs, its state, cost and result."""

    id: int
    owner_platform: str
    owner_id: str
    owner_name: str
    place: Place
    endpoint_id: str
    input: dict[str, Any]
    state: JobState
    estimate_credits: int
    estimate_usd: float
    created_at: datetime
    updated_at: datetime
    prompt: str = ""
    settled_credits: int | None = None
    settled_usd: float | None = None
    fal_request_id: str | None = None
    local_position: int | None = None
    queue_position: int | None = None
    progress: float | None = None
    status_message: MessageRef | None = None
    result_message: MessageRef | None = None
    interaction_token: str | None = field(default=None, repr=False)
    interaction_expires_at: datetime | None = None
    result_url: str | None = None
    result_size: int | None = None
    result: dict[str, Any] | None = None  # the fal output JSON
    error_type: str | None = None
    error_message: str | None = None  # user-facing text
    finished_at: datetime | None = None
    started_at: datetime | None = None  # when fal started running it
    parent_id: int | None = None
    parent_kind: ParentKind | None = None
    # A fal-account pause gave its reservation back; it reserves again before it is sent.
    unreserved: bool = False
    # The owner as admission saw them (tier by role, admin exemption), for that.
    owner_roles: tuple[str, ...] = ()
    owner_admin: bool = False

    @property
    def owner_key(self) -> str:
        return f"{self.owner_platform}:{self.owner_id}"

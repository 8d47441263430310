"""The one guess of image or video from a platform's hints, before any download; and the
kind of a local file, from its bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import media
from bot.errors import MediaError
from bot.ports import AttachmentKind
from tests.media import makers


@pytest.mark.parametrize(
    ("content_type", "name", "expected"),
    [
        # The content type speaks first, whatever the name says.
        ("image/png", "clip.mp4", "image"),
        ("video/quicktime", "still.png", "video"),
        ("IMAGE/HEIC", "", "image"),  # a hint only: the bytes are judged later
        # No (or a vague) content type: the name's ending.
        (None, "cat.PNG", "image"),
        (None, "cat.jpg", "image"),
        ("", "cat.jpeg", "image"),
        (None, "cat.webp", "image"),
        (None, "cat.gif", "image"),
        ("application/octet-stream", "clip.mp4", "video"),
        (None, "clip.MOV", "video"),
        (None, "clip.webm", "video"),
        (None, "clip.m4v", "video"),
        # Nothing says: unknown.
        (None, "notes.txt", "unknown"),
        (None, "", "unknown"),
        ("image", "file", "unknown"),  # not a content type
        ("text/plain", "README", "unknown"),
    ],
)
def test_content_type_then_name(content_type: str | None, name: str,
                                expected: AttachmentKind) -> None:
    assert media.kind_from_hint(content_type, name) == expected


@pytest.mark.parametrize(
    ("mimetype", "filetype", "expected"),
    [("", "jpg", "image"), (None, "png", "image"), (None, "gif", "image"), (None, "webp", "image"),
     (None, "mp4", "video"), (None, "mov", "video"), (None, "webm", "video"), (None, "m4v", "video"),
     (None, "pdf", "unknown"), (None, None, "unknown"),
     ("video/mp4", "png", "video")],  # the content type still wins
)
def test_a_platform_file_type(mimetype: str | None, filetype: str | None,
                              expected: AttachmentKind) -> None:
    assert media.kind_from_hint(mimetype, filetype=filetype) == expected


def test_file_type_speaks_before_the_name() -> None:
    assert media.kind_from_hint(None, "export.png", filetype="mp4") == "video"
    assert media.kind_from_hint(None, "export.png", filetype="binary") == "image"


@pytest.mark.parametrize(
    ("url", "expected"),
    [("https://cdn.example/att/1/clip.mp4?ex=65f&is=65e&hm=abc", "video"),
     ("https://cdn.example/att/1/cat.png?name=clip.mp4", "image"),  # the query is not the name
     ("https://cdn.example/a/clip.webm#t=3", "video"),
     ("file:///home/me/clip.mov", "video"),
     ("/home/me/cat.jpg", "image"),
     ("https://example.com/watch", "unknown")],
)
def test_names_may_be_paths_and_urls(url: str, expected: AttachmentKind) -> None:
    assert media.kind_from_hint(None, url) == expected


def test_a_default_for_callers_that_must_choose() -> None:
    assert media.kind_from_hint(None, "https://example.com/watch", default="image") == "image"
    assert media.kind_from_hint(None, "https://example.com/a.mp4", default="image") == "video"
    assert media.kind_from_hint("video/mp4", "", default="image") == "video"


def test_kind_of_a_local_file_is_its_bytes(tmp_path: Path, clips: dict[str, Path]) -> None:
    misnamed = tmp_path / "clip.mp4"
    misnamed.write_bytes(makers.image_bytes("PNG"))
    assert media.kind_of_file(misnamed) == "image"
    assert media.kind_of_file(clips["webm"]) == "video"
    archive = tmp_path / "cat.png"
    archive.write_bytes(makers.zip_bytes())
    with pytest.raises(MediaError, match="ZIP archive"):
        media.kind_of_file(archive)

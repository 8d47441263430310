"""The simulator's file storage: uploaded inputs and rendered videos, served under
`/files/{id}/{name}`.

Without a state directory the files live in a temporary directory removed when the
simulator stops. With one (the built-in simulator keeps `data_dir/sim`), they stay
on disk for the next start and for other simulators on the same directory: each
file is `files/<id>` plus `files/<id>.json` (its content type), the sidecar written
last and atomically, so a file whose sidecar exists is complete.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.private_files import private_dir, tighten, write_private

# A file's URL path: the id is a uuid4 hex, which no other simulator makes twice.
_FILE_PATH = re.compile(r"^/files/([0-9a-f]{32})/[^/]+$")


@dataclass
class StoredFile:
    """A file on disk and the content type it is served with."""

    path: Path
    content_type: str


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never half:
    a temporary file of its own (unique, so writers in other processes do not clash), then
    `os.replace`."""
    write_private(path, data)  # 0600 too, whatever the umask


def file_id_of(url: str) -> str | None:
    """The file id in a simulator file URL (`http://host:port/files/<id>/<name>`), else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    match = _FILE_PATH.match(parts.path)
    return match.group(1) if match else None


class FileStore:
    """Files by id. It never fetches anything: only its own files and `data:` URIs are read.

    "Its own" includes files an earlier run (or another simulator) wrote to the same
    state directory: their URLs name another port, but their ids are on disk here.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.base_url = ""  # the simulator's URL, once it listens
        self._persistent = root is not None
        self._root = root
        self._files: dict[str, StoredFile] = {}

    def open(self) -> None:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="ltx-sim-"))
        else:
            private_dir(self._root)

    async def close(self) -> None:
        # A state directory is kept: that is what it is for.
        if self._root is not None and not self._persistent:
            await asyncio.to_thread(shutil.rmtree, self._root, True)
            self._root = None

    def new_file(self, kind: str, suffix: str = "") -> tuple[str, Path]:
        """(id, path) for a file about to be written; `add` it once it is complete."""
        assert self._root is not None, "FileStore.open() first"
        file_id = uuid.uuid4().hex
        name = file_id if self._persistent else f"{kind}-{file_id}{suffix}"
        return file_id, self._root / name

    def add(self, file_id: str, path: Path, content_type: str) -> None:
        self._files[file_id] = StoredFile(path, content_type)
        if self._persistent:
            tighten(path)  # written by an encoder under the process's umask
            meta = json.dumps({"content_type": content_type}).encode()
            write_atomically(path.with_name(f"{file_id}.json"), meta)

    def get(self, file_id: str) -> StoredFile | None:
        stored = self._files.get(file_id)
        if stored is None and self._persistent and re.fullmatch(r"[0-9a-f]{32}", file_id):
            stored = self._from_disk(file_id)
        return stored

    def _from_disk(self, file_id: str) -> StoredFile | None:
        assert self._root is not None
        try:
            meta = json.loads((self._root / f"{file_id}.json").read_text())
        except (OSError, ValueError):
            return None
        path = self._root / file_id
        if not isinstance(meta, dict) or not path.is_file():
            return None
        stored = StoredFile(path, str(meta.get("content_type") or "application/octet-stream"))
        self._files[file_id] = stored
        return stored

    def discard(self, file_id: str) -> bool:
        """Delete one file (fal's delete of a request's payloads); True when it was there."""
        stored = self.get(file_id)
        if stored is None:
            return False
        self._files.pop(file_id, None)
        stored.path.unlink(missing_ok=True)
        stored.path.with_name(f"{file_id}.json").unlink(missing_ok=True)
        return True

    def url(self, file_id: str, name: str) -> str:
        return f"{self.base_url}/files/{file_id}/{name}"

    def local_url(self, url: str) -> str | None:
        """`url` on this simulator's current address when it names one of our files (made by
        this run or an earlier one on the same directory), else None."""
        file_id = file_id_of(url)
        if file_id is None or self.get(file_id) is None:
            return None
        return f"{self.base_url}{urlsplit(url).path}"

    def read_input(self, url: str) -> bytes | None:
        """Bytes behind an input URL, when they are local (our files or a data: URI)."""
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                return base64.b64decode(data, validate=False) if header.endswith(";base64") else data.encode()
            except (binascii.Error, ValueError):
                return None
        file_id = file_id_of(url)
        ours = url.startswith(f"{self.base_url}/files/") if self.base_url else False
        if file_id is None or not (ours or self._persistent):
            return None
        stored = self.get(file_id)
        return stored.path.read_bytes() if stored is not None else None

    def prune(self, older_than_seconds: float) -> int:
        """Remove files last written more than `older_than_seconds` ago; returns how many."""
        if self._root is None or not self._persistent:
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for meta in self._root.glob("*.json"):
            try:
                if meta.stat().st_mtime >= cutoff:
                    continue
                (self._root / meta.stem).unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
            except OSError:
                continue  # another simulator removed it first
            self._files.pop(meta.stem, None)
            removed += 1
        return removed

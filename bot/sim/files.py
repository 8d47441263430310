"""The simulator's file storage: uploaded inputs and rendered videos, served under
`/files/{id}/{name}`, in one temporary directory removed when the simulator stops."""

from __future__ import annotations

import asyncio
import base64
import binascii
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StoredFile:
    """A file on disk and the content type it is served with."""

    path: Path
    content_type: str


class FileStore:
    """Files by id. It never fetches anything: only its own URLs and `data:` URIs are read."""

    def __init__(self) -> None:
        self.base_url = ""  # the simulator's URL, once it listens
        self._root: Path | None = None
        self._files: dict[str, StoredFile] = {}

    def open(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="ltx-sim-"))

    async def close(self) -> None:
        if self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)
            self._root = None

    def new_file(self, kind: str, suffix: str = "") -> tuple[str, Path]:
        """(id, path) for a file about to be written; `add` it once it is complete."""
        assert self._root is not None, "FileStore.open() first"
        file_id = uuid.uuid4().hex
        return file_id, self._root / f"{kind}-{file_id}{suffix}"

    def add(self, file_id: str, path: Path, content_type: str) -> None:
        self._files[file_id] = StoredFile(path, content_type)

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def url(self, file_id: str, name: str) -> str:
        return f"{self.base_url}/files/{file_id}/{name}"

    def read_input(self, url: str) -> bytes | None:
        """Bytes behind an input URL, when they are local (our files or a data: URI)."""
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                return base64.b64decode(data, validate=False) if header.endswith(";base64") else data.encode()
            except (binascii.Error, ValueError):
                return None
        prefix = f"{self.base_url}/files/"
        if self.base_url and url.startswith(prefix):
            stored = self._files.get(url[len(prefix):].split("/", 1)[0])
            if stored is not None:
                return stored.path.read_bytes()
        return None

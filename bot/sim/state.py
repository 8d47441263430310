"""The simulator's queue on disk, so a restart (or another simulator on the same
directory) finds every request as it was.

Layout of a state directory:

- `requests/<request_id>.json`: one file per request (its input, state, logs and
  result), rewritten whole and atomically at each change, so no two simulators
  ever write the same file half-and-half.
- `owners/<token>.json`: one per running simulator, touched every few seconds. A
  request's `owner` names the simulator that runs it; another simulator adopts an
  unfinished request only when that owner is gone (stopped, or its process dead).
- `cancel/<request_id>`: a cancel asked of a simulator that does not run the
  request, for its owner to see.
- `origins/<scheme_host_port>`: every address a simulator on this directory has
  listened on, so that a URL one of them made is known for ours after a restart
  even when its file is gone.
- `files/`: uploaded inputs and rendered videos (`files.FileStore`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.private_files import create_private, private_dir
from bot.sim.files import write_atomically

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
# An owner that has not beaten for this long is gone even if its process seems alive
# (another host's process, or one that hangs).
OWNER_STALE_SECONDS = 15.0


class SimState:
    """Request records and owner heartbeats in one directory (see the module's text)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests = root / "requests"
        self.owners = root / "owners"
        self.cancels = root / "cancel"
        self.origins = root / "origins"
        self.files = root / "files"
        self.owner = uuid.uuid4().hex  # this simulator, for as long as it runs

    def open(self) -> None:
        for folder in (self.requests, self.owners, self.cancels, self.origins, self.files):
            private_dir(folder)  # 0700: inputs and prompts of the requests it keeps
        self.beat()

    def close(self) -> None:
        # Gone at once: other simulators may adopt what this one leaves unfinished.
        (self.owners / f"{self.owner}.json").unlink(missing_ok=True)

    # ------------------------------------------------------------ requests

    def save(self, record: dict[str, Any]) -> None:
        write_atomically(self.requests / f"{record['id']}.json",
                         json.dumps(record, separators=(",", ":")).encode())

    def load(self, request_id: str) -> dict[str, Any] | None:
        if not _plain_id(request_id):
            return None
        return _read_json(self.requests / f"{request_id}.json")

    def unfinished(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.requests.glob("*.json")):
            record = _read_json(path)
            if record is not None and record.get("state") != "COMPLETED":
                yield record

    def prune(self, older_than_seconds: float) -> None:
        """Forget finished requests whose result has been gone for a while."""
        cutoff = time.time() - older_than_seconds
        for path in self.requests.glob("*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    record = _read_json(path)
                    if record is not None and record.get("state") == "COMPLETED":
                        path.unlink(missing_ok=True)
            except OSError:
                continue  # another simulator pruned it first

    def prune_origins(self, older_than_seconds: float) -> None:
        cutoff = time.time() - older_than_seconds
        for path in self.origins.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    # ------------------------------------------------------------ addresses

    def remember_origin(self, origin: str) -> None:
        path = self.origins / _origin_name(origin)
        if not create_private(path):
            path.touch()  # known already: only its age is renewed

    def was_origin(self, origin: str) -> bool:
        return (self.origins / _origin_name(origin)).exists()

    # ------------------------------------------------------------ owners

    def beat(self) -> None:
        body = {"pid": os.getpid(), "host": socket.gethostname()}
        write_atomically(self.owners / f"{self.owner}.json", json.dumps(body).encode())

    def owner_alive(self, owner: str | None) -> bool:
        """True when `owner` is another simulator that still runs."""
        if not owner or owner == self.owner or not _plain_id(owner):
            return False
        path = self.owners / f"{owner}.json"
        info = _read_json(path)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return False
        if info is None or age > OWNER_STALE_SECONDS:
            return False
        if info.get("host") == socket.gethostname():
            return _process_alive(info.get("pid"))
        return True

    # ------------------------------------------------------------ cancels from elsewhere

    def ask_cancel(self, request_id: str) -> None:
        write_atomically(self.cancels / request_id, b"")

    def cancel_asked(self, request_id: str) -> bool:
        return (self.cancels / request_id).exists()

    def forget_cancel(self, request_id: str) -> None:
        (self.cancels / request_id).unlink(missing_ok=True)


def _origin_name(origin: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in origin)


def _plain_id(value: str) -> bool:
    # Request ids and owner tokens become file names: nothing that could leave the folder.
    return bool(value) and all(c.isalnum() or c == "-" for c in value)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, only not ours to signal
    return True

"""Inputs onto fal's storage: small files inline as data URIs, the rest through the CDN
with a short-lived token that is cached and refreshed before it expires."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import FalError
from bot.fal.retry import Caller, json_or_none

_UPLOAD_CHUNK = 1024 * 1024
# Refresh the CDN token this long before fal says it expires, so an upload that
# starts just before expiry does not arrive with a dead token.
_TOKEN_MARGIN_SECONDS = 60.0
_DEFAULT_TOKEN_SECONDS = 600.0


@dataclass
class _CdnToken:
    token: str = field(repr=False)
    token_type: str
    base_url: str
    refresh_at: float  # time.monotonic() after which a new token is fetched


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, _UPLOAD_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


def _ascii_filename(name: str) -> str:
    # Header values must be latin-1 for httpx; keep it to safe ASCII.
    cleaned = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return cleaned.strip() or "upload.bin"


def _token_lifetime(expires: object) -> float:
    """Seconds until `expires_at` (ISO 8601), or a safe default when fal sends none."""
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(expires)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return (when - datetime.now(UTC)).total_seconds()
    return _DEFAULT_TOKEN_SECONDS


class Storage:
    """fal's file storage: turns a local file into a URL a fal endpoint can read."""

    def __init__(self, calls: Caller, *, rest_url: str, data_uri_max_bytes: int = 0) -> None:
        self._calls = calls
        self.rest_url = rest_url.rstrip("/")
        self.data_uri_max_bytes = data_uri_max_bytes
        self._token: _CdnToken | None = None
        self._token_lock = asyncio.Lock()

    async def upload(self, path: Path, *, content_type: str, filename: str) -> str:
        size = (await asyncio.to_thread(path.stat)).st_size
        if self.data_uri_max_bytes > 0 and size <= self.data_uri_max_bytes:
            data = await asyncio.to_thread(path.read_bytes)
            return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
        for attempt in (1, 2):
            token = await self._cdn_token()
            try:
                return await self._upload_with(token, path, size, content_type, filename)
            except FalError as exc:
                # A token revoked early: fetch a fresh one once.
                if exc.status in (401, 403) and attempt == 1:
                    self._token = None
                    continue
                raise
        raise FalError("fal storage refused the upload token")  # pragma: no cover

    async def _upload_with(self, token: _CdnToken, path: Path, size: int, content_type: str,
                           filename: str) -> str:
        headers = {
            "Authorization": f"{token.token_type} {token.token}",
            "Content-Type": content_type,
            "X-Fal-File-Name": _ascii_filename(filename),
            "Content-Length": str(size),
        }
        response = await self._calls.send(
            "POST",
            f"{token.base_url.rstrip('/')}/files/upload",
            what="upload",
            headers=headers,
            content_factory=lambda: _file_chunks(path),
            with_key=False,
        )
        data = json_or_none(response)
        if isinstance(data, Mapping) and isinstance(data.get("access_url"), str):
            return str(data["access_url"])
        raise FalError("fal storage sent no access_url", status=response.status_code)

    async def _cdn_token(self) -> _CdnToken:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token.refresh_at:
                return self._token
            response = await self._calls.send(
                "POST",
                f"{self.rest_url}/storage/auth/token",
                what="storage token",
                params={"storage_type": "fal-cdn-v3"},
                json_body={},
            )
            data = json_or_none(response)
            if not isinstance(data, Mapping) or not all(
                isinstance(data.get(k), str) for k in ("token", "token_type", "base_url")
            ):
                raise FalError("fal storage sent an unusable token", status=response.status_code)
            lifetime = _token_lifetime(data.get("expires_at"))
            margin = min(_TOKEN_MARGIN_SECONDS, max(0.0, lifetime) / 10)
            self._calls.hide(data["token"])
            self._token = _CdnToken(
                token=data["token"],
                token_type=data["token_type"],
                base_url=data["base_url"],
                refresh_at=time.monotonic() + lifetime - margin,
            )
            return self._token

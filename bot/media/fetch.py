"""Downloads: inputs users attach or link to, and finished videos to fit and post.

A `Fetcher` is configured once (the shared HTTP client, the media limits, hosts the
operator lets through the SSRF guard) and handed to whoever downloads. Every hop of a
redirect chain passes the guard (`bot.media.guard`), credentials stay on the hosts
they belong to, and sizes and time are capped.

`download` is for links a user gave; `fetch_result` is for files the backend made
(results, stored inputs): those may need moving to the backend's current address,
and when one cannot be fetched the words say it is the backend's file.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from bot.config import MediaSettings
from bot.errors import MediaError
from bot.media.budget import in_budget
from bot.media.guard import PrivateAddress, check_destination
from bot.media.probe import probe_input
from bot.media.scratch import discard
from bot.media.sizes import format_size, too_big
from bot.media.sniff import FORMATS
from bot.model import LocalMedia
from bot.ports import Attachment, Credential

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


class FileGone(MediaError):
    """The server answered 404 or 410: the file is not there (any more)."""


class BackendFileError(MediaError):
    """A file the backend made could not be fetched; the text says so, not "your link"."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


@dataclass(frozen=True)
class Fetcher:
    """Everything a download needs, configured in one place.

    `extra_allowed_hosts` add to the operator's `media.allow_hosts` (the configured
    backend's `host:port`, see `guard.backend_hosts`), in the same forms. `rebase` maps a
    URL the backend made earlier to where that file is now (the built-in simulator's
    address changes with each start), or None to leave it.
    """

    http: httpx.AsyncClient
    settings: MediaSettings
    extra_allowed_hosts: tuple[str, ...] = ()
    rebase: Callable[[str], str | None] | None = None

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return (*self.settings.allow_hosts, *self.extra_allowed_hosts)

    async def download(self, url: str, dest: Path, *, max_bytes: int,
                       credential: Credential | None = None) -> Path:
        """Stream `url` into `dest` (at most `max_bytes`, within the download timeout), refusing
        private destinations at every redirect hop and sending `credential` only where it
        belongs. Nothing is left at `dest` when it fails."""
        timeout = self.settings.download_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                await self._follow(url, dest, max_bytes, credential)
        except TimeoutError:
            discard(dest)
            raise MediaError(f"The download took longer than {timeout:g} seconds, so I gave up.") from None
        except BaseException:
            discard(dest)
            raise
        return dest

    def current_url(self, url: str) -> str:
        """Where a file the backend made earlier is now (see `rebase`)."""
        moved = self.rebase(url) if self.rebase is not None else None
        return moved or url

    async def fetch_result(self, url: str, dest: Path, *, max_bytes: int) -> Path:
        """`download` a file the backend made (a result video, say), from where it is now.
        A failure is a `BackendFileError` whose words put it on the backend: the user gave
        no link. Its `gone` says the backend no longer has the file."""
        target = self.current_url(url)
        where = safe_source(target)
        try:
            return await self.download(target, dest, max_bytes=max_bytes)
        except PrivateAddress as exc:
            raise BackendFileError(
                f"The video backend handed me a link on a private network address ({exc.host}), "
                "which I don't fetch. If that server is the operator's own, it belongs in "
                "backend.fal_queue_url and backend.fal_rest_url (or media.allow_hosts)."
            ) from None
        except FileGone:
            raise BackendFileError(f"The video backend no longer has that file ({where}).",
                                   gone=True) from None
        except MediaError as exc:
            raise BackendFileError(
                f"I couldn't download the file the video backend made ({where}): {exc.message}"
            ) from None

    async def fetch_input(self, att: Attachment, dest_dir: Path, *,
                          allow_local: bool = False) -> LocalMedia:
        """Download an attachment (or copy it, when `allow_local` and it names a local file,
        as on a platform whose `traits.local_files` is set), then sniff, probe and check it."""
        max_bytes = self.settings.max_input_bytes
        if att.size is not None and att.size > max_bytes:
            raise MediaError(too_big(att.size, max_bytes))
        await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
        dest = dest_dir / f"input-{uuid.uuid4().hex[:12]}"
        try:
            source = await self._bring(att, dest, max_bytes, allow_local)
            info = await in_budget(self.settings, probe_input, dest, self.settings,
                                   filename=att.filename)
            final = dest.with_suffix(FORMATS[info.format].extension)
            dest.rename(final)
        except BaseException:
            discard(dest)
            raise
        return LocalMedia(path=final, info=info, source=source, filename=att.filename)

    async def _bring(self, att: Attachment, dest: Path, max_bytes: int, allow_local: bool) -> str:
        """The attachment's bytes at `dest`; returns where they came from, safe to show."""
        local = local_path(att.url)
        if local is None:
            await self.download(att.url, dest, max_bytes=max_bytes, credential=att.credential)
            return safe_source(att.url)
        if not allow_local:
            raise MediaError("I can only fetch http:// or https:// links.")
        await asyncio.to_thread(_copy_local, local, dest, max_bytes)
        return local.name

    async def _follow(self, url: str, dest: Path, max_bytes: int,
                      credential: Credential | None) -> None:
        """GET `url`, following redirects by hand so the guard sees every hop."""
        current, previous_scheme = url, None
        for _hop in range(MAX_REDIRECTS + 1):
            hop = _Hop.parse(current, previous_scheme)
            pinned = await check_destination(hop.host, hop.port, self.allowed_hosts)
            headers, extensions = hop.request_parts(
                pinned, credential, self.settings.download_timeout_seconds
            )
            response = await _send(self.http, httpx.URL(current), pinned, headers, extensions,
                                   hop.host)
            try:
                location = _redirect_target(response, hop.host)
                if location is not None:
                    previous_scheme, current = hop.scheme, urljoin(current, location)
                    continue
                _check_status(response.status_code, hop.host)
                _check_length(response, max_bytes)
                await _stream_to(response, dest, max_bytes)
                return
            finally:
                await response.aclose()
        raise MediaError("That link redirects too many times.")


@dataclass(frozen=True)
class _Hop:
    """One request of a redirect chain, its URL checked before anything connects."""

    scheme: str
    host: str
    port: int
    authority: str  # host[:port] as the URL names it, without user info
    downgrade: bool  # https -> http: a credential must stay behind

    @classmethod
    def parse(cls, url: str, previous_scheme: str | None) -> _Hop:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            if previous_scheme is None:
                raise MediaError("I can only fetch http:// or https:// links.")
            raise MediaError("That link redirects somewhere I can't follow (not http or https).")
        if parts.username or parts.password:
            raise MediaError("I don't fetch links with a user name or password in them.")
        host = (parts.hostname or "").lower()
        if not host:
            raise MediaError("That link has no server name in it.")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise MediaError("That link has an invalid port number.") from None
        return cls(scheme=scheme, host=host, port=port,
                   authority=parts.netloc.rsplit("@", 1)[-1],
                   downgrade=previous_scheme == "https" and scheme == "http")

    def request_parts(self, pinned: list[str] | None, credential: Credential | None,
                      timeout_seconds: float) -> tuple[dict[str, str], dict[str, Any]]:
        """(headers, httpx extensions) for this hop's GET."""
        headers: dict[str, str] = {"Accept": "*/*", "User-Agent": "ltx-bot"}
        # A credential never rides along to another host, nor from https down to http.
        if credential is not None and credential.allows(self.host, self.port) and not self.downgrade:
            headers[credential.header] = credential.value
        extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout_seconds).as_dict()}
        if pinned is not None:
            # The original authority, so virtual hosting (and TLS, via SNI) still see the name.
            headers["Host"] = self.authority
            if self.scheme == "https":
                extensions["sni_hostname"] = self.host
        return headers, extensions


async def _send(
    http: httpx.AsyncClient, url: httpx.URL, addresses: list[str] | None,
    headers: dict[str, str], extensions: dict[str, Any], host: str,
) -> httpx.Response:
    """GET `url`, connecting to each checked address in turn (an unreachable IPv6 address
    first in the DNS answer must not sink the download)."""
    unreachable = MediaError(f"I couldn't reach {host} to download that file.")
    targets: list[str | None] = list(addresses) if addresses else [None]
    for index, address in enumerate(targets):
        target = url if address is None else url.copy_with(host=address)
        # Built apart from the shared client: its default headers, cookies and auth (a fal
        # key, say) must never ride along to whatever host a user's link names.
        request = httpx.Request("GET", target, headers=headers, extensions=extensions)
        try:
            return await http.send(request, stream=True, follow_redirects=False, auth=None)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.ConnectError:
            if index + 1 < len(targets):
                continue
            raise unreachable from None
        except httpx.HTTPError:
            raise unreachable from None
    raise unreachable


def _redirect_target(response: httpx.Response, host: str) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    location: str | None = response.headers.get("location")
    if not location:
        raise MediaError(f"{host} answered with a redirect to nowhere.")
    return location


def _check_status(status: int, host: str) -> None:
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise MediaError(f"{host} refused to give me that file (HTTP {status}); it may need a login.")
    if status in (404, 410):
        raise FileGone(f"That file is gone from {host} (HTTP {status}); links to uploads may expire.")
    raise MediaError(f"{host} answered HTTP {status} instead of the file.")


def _check_length(response: httpx.Response, max_bytes: int) -> None:
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise MediaError(too_big(int(length), max_bytes))


async def _stream_to(response: httpx.Response, dest: Path, max_bytes: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    received = 0
    fh: IO[bytes]
    with dest.open("wb") as fh:
        try:
            # Decoded bytes, counted after decoding: a gzip bomb hits the cap like any file.
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise MediaError(f"That file is bigger than the {format_size(max_bytes)} limit.")
                fh.write(chunk)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError:
            raise MediaError("The download broke off before the file was complete.") from None


def _copy_local(src: Path, dest: Path, max_bytes: int) -> None:
    if not src.is_file():
        raise MediaError(f"There is no file at {src.name}.")
    size = src.stat().st_size
    if size > max_bytes:
        raise MediaError(too_big(size, max_bytes))
    shutil.copyfile(src, dest)


def local_path(url: str) -> Path | None:
    """The filesystem path an attachment URL names (a path or file:// URL), else None."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if "://" in url:
        return None
    return Path(url).expanduser()


def safe_source(url: str) -> str:
    """A URL without its query, fragment or user info: signed links keep their secrets."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    return Path(unquote(parts.path) if parts.scheme == "file" else url).name

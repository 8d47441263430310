"""Downloads: SSRF refusals at every hop, credentials kept on their host, size caps,
timeouts, and fetch_input end to end against real servers on 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError
from bot.media import guard
from bot.ports import Attachment, Credential
from tests.media import makers
from tests.media.conftest import FileServer, RecordingTransport

PNG = makers.image_bytes("PNG", (96, 64))
Servers = Callable[[], Awaitable[FileServer]]


def allowing(settings: MediaSettings, *hosts: str, **changes: object) -> MediaSettings:
    return settings.model_copy(update={"allow_hosts": list(hosts), **changes})


async def refused(coro: Awaitable[object]) -> str:
    with pytest.raises(MediaError) as caught:
        await coro
    return str(caught.value)


async def test_fetches_from_an_allowed_loopback_host(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/cat.png"] = PNG
    settings = allowing(media_settings, "127.0.0.1")
    att = Attachment(url=f"{server.url}/cat.png?sig=secret", filename="cat.png")
    local = await media.Fetcher(http, settings).fetch_input(att, tmp_path / "in")
    assert local.info.format == "png" and (local.info.width, local.info.height) == (96, 64)
    assert local.path.suffix == ".png" and local.path.read_bytes() == PNG
    assert local.source == f"{server.url}/cat.png"  # signed query parameters never kept
    assert local.filename == "cat.png"


async def test_loopback_is_refused_unless_allowed(
    server: FileServer, http: httpx.AsyncClient, transport: RecordingTransport,
    media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/cat.png"] = PNG
    fetcher = media.Fetcher(http, media_settings)
    text = await refused(fetcher.download(f"{server.url}/cat.png", tmp_path / "f", max_bytes=10_000))
    assert text == "That link points to a private network address, which I can't fetch."
    assert server.hits == [] and transport.urls == []
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("target", ["http://10.0.0.1/x.png", "http://169.254.169.254/latest/meta-data",
                                    "http://[::ffff:10.1.1.1]/", "http://0.0.0.0:80/",
                                    "http://[fe80::1]/", "http://224.0.0.1/", "http://100.64.0.1/"])
async def test_redirect_to_a_private_address_is_refused_before_connecting(
    server: FileServer, http: httpx.AsyncClient, transport: RecordingTransport,
    media_settings: MediaSettings, tmp_path: Path, target: str
) -> None:
    server.redirects["/go"] = (302, target)
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"{server.url}/go", tmp_path / "f", max_bytes=10_000))
    assert "private network address" in text
    # Only the first hop (our loopback server) was ever connected to.
    assert [url.host for url in transport.urls] == ["127.0.0.1"]


async def test_redirect_to_loopback_on_another_port_needs_its_own_allowance(
    servers: Servers, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    front, back = await servers(), await servers()
    back.files["/cat.png"] = PNG
    front.redirects["/go"] = (307, f"{back.url}/cat.png")
    only_front = allowing(media_settings, f"127.0.0.1:{front.port}")
    front_only = media.Fetcher(http, only_front)
    assert "private network" in await refused(
        front_only.download(f"{front.url}/go", tmp_path / "a", max_bytes=10_000))
    assert back.hits == []
    both = allowing(media_settings, f"127.0.0.1:{front.port}", f"127.0.0.1:{back.port}")
    fetcher = media.Fetcher(http, both)
    path = await fetcher.download(f"{front.url}/go", tmp_path / "b", max_bytes=10_000)
    assert path.read_bytes() == PNG


async def test_extra_allowed_hosts_admit_the_simulator(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/out.png"] = PNG
    fetcher = media.Fetcher(http, media_settings, (f"127.0.0.1:{server.port}",))
    path = await fetcher.download(f"{server.url}/out.png", tmp_path / "f", max_bytes=10_000)
    assert path.read_bytes() == PNG


async def test_every_resolved_address_is_checked(
    monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient, transport: RecordingTransport,
    media_settings: MediaSettings, tmp_path: Path
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        assert host == "mixed.test"
        return ["93.184.216.34", "10.1.2.3"]  # one public, one private: refuse

    monkeypatch.setattr(guard, "resolve_host", resolve)
    fetcher = media.Fetcher(http, media_settings)
    text = await refused(fetcher.download("https://mixed.test/a.png", tmp_path / "f",
                                          max_bytes=10_000))
    assert "private network" in text
    assert transport.urls == []


async def test_connection_is_pinned_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, server: FileServer, http: httpx.AsyncClient,
    transport: RecordingTransport, media_settings: MediaSettings, tmp_path: Path
) -> None:
    # The name resolves once, to an address the operator allowed; the request goes to that
    # address (no second lookup that could answer differently) and still names the host.
    # 127.0.0.2 answers first but nothing listens there: the next checked address is tried.
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]

    monkeypatch.setattr(guard, "resolve_host", resolve)
    server.files["/cat.png"] = PNG
    settings = allowing(media_settings, "127.0.0.0/8")
    url = f"http://files.test:{server.port}/cat.png"
    path = await media.Fetcher(http, settings).download(url, tmp_path / "f", max_bytes=10_000)
    assert path.read_bytes() == PNG
    assert server.hits[0].headers["Host"] == f"files.test:{server.port}"
    assert [url.host for url in transport.urls] == ["127.0.0.2", "127.0.0.1"]


async def test_credential_is_never_sent_to_another_host(
    servers: Servers, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    # Two servers, one address, different ports: the credential names host:port, so it is
    # scoped like an origin and the second server is "another host".
    files, elsewhere = await servers(), await servers()
    elsewhere.files["/cat.png"] = PNG
    files.files["/own.png"] = PNG
    files.redirects["/same"] = (302, "/own.png")
    files.redirects["/away"] = (302, f"{elsewhere.url}/cat.png")
    credential = Credential(header="Authorization", value="Bearer xoxb-secret",
                            hosts=(f"127.0.0.1:{files.port}",))
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    await fetcher.download(f"{files.url}/same", tmp_path / "a", max_bytes=10_000,
                           credential=credential)
    await fetcher.download(f"{files.url}/away", tmp_path / "b", max_bytes=10_000,
                           credential=credential)
    assert [h.headers.get("Authorization") for h in files.hits] == ["Bearer xoxb-secret"] * 3
    assert [h.path for h in elsewhere.hits] == ["/cat.png"]
    assert "Authorization" not in elsewhere.hits[0].headers
    # Straight to the other server: never sent either.
    await fetcher.download(f"{elsewhere.url}/cat.png", tmp_path / "c", max_bytes=10_000,
                           credential=credential)
    assert all("Authorization" not in h.headers for h in elsewhere.hits)


async def test_credential_by_host_name_is_dropped_on_a_hop_to_an_address(
    monkeypatch: pytest.MonkeyPatch, servers: Servers, http: httpx.AsyncClient,
    media_settings: MediaSettings, tmp_path: Path
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(guard, "resolve_host", resolve)
    slack, cdn = await servers(), await servers()
    cdn.files["/f.png"] = PNG
    slack.redirects["/files/f.png"] = (302, f"{cdn.url}/f.png")
    credential = Credential(header="Authorization", value="Bearer xoxb-secret",
                            hosts=("slack.test",))
    settings = allowing(media_settings, "127.0.0.1")
    await media.Fetcher(http, settings).download(
        f"http://files.slack.test:{slack.port}/files/f.png", tmp_path / "f", max_bytes=10_000,
        credential=credential)
    assert slack.hits[0].headers["Authorization"] == "Bearer xoxb-secret"  # a subdomain
    assert "Authorization" not in cdn.hits[0].headers


def test_credential_matching() -> None:
    by_origin = Credential("Authorization", "x", hosts=("127.0.0.1:8080", "[::1]:9000"))
    assert by_origin.allows("127.0.0.1", 8080)
    assert not by_origin.allows("127.0.0.1", 8081)
    assert not by_origin.allows("127.0.0.1")
    assert by_origin.allows("::1", 9000) and by_origin.allows("[::1]", 9000)
    by_name = Credential("Authorization", "x", hosts=("slack.com",))
    assert by_name.allows("files.slack.com", 443) and by_name.allows("SLACK.com.")
    assert not by_name.allows("evilslack.com") and not by_name.allows("slack.com.evil.net")
    strict = Credential("Authorization", "x", hosts=("slack.com",), subdomains=False)
    assert not strict.allows("files.slack.com")
    assert "x" not in repr(by_name)


async def test_size_cap_by_header_and_while_streaming(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/big"] = b"\x00" * 300_000
    server.files["/big-chunked"] = b"\x00" * 300_000
    server.chunked.add("/big-chunked")
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"{server.url}/big", tmp_path / "a", max_bytes=100_000))
    assert text == "That file is 0.3 MB; the limit is 98 KB."
    text = await refused(fetcher.download(f"{server.url}/big-chunked", tmp_path / "b",
                                          max_bytes=100_000))
    assert "bigger than the 98 KB limit" in text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


async def test_claimed_size_is_refused_before_downloading(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    settings = allowing(media_settings, "127.0.0.1", max_input_bytes=1000)
    att = Attachment(url=f"{server.url}/x.png", size=5 * 1024 * 1024)
    fetcher = media.Fetcher(http, settings)
    assert "5 MB; the limit is" in await refused(fetcher.fetch_input(att, tmp_path))
    assert server.hits == []


async def test_timeout(server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings,
                       tmp_path: Path) -> None:
    settings = allowing(media_settings, "127.0.0.1", download_timeout_seconds=0.3)
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"{server.url}/hang", tmp_path / "f", max_bytes=1000))
    assert text == "The download took longer than 0.3 seconds, so I gave up."


@pytest.mark.parametrize(
    ("setup", "expected"),
    [("redirect-loop", "redirects too many times"), ("ftp", "somewhere I can't follow"),
     ("404", "gone from 127.0.0.1 (HTTP 404)"), ("403", "refused to give me that file (HTTP 403)"),
     ("500", "answered HTTP 500")],
)
async def test_http_failures_are_plain(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path,
    setup: str, expected: str
) -> None:
    server.redirects["/redirect-loop"] = (302, "/redirect-loop")
    server.redirects["/ftp"] = (302, "ftp://127.0.0.1/file")
    for code in (404, 403, 500):
        server.statuses[f"/{code}"] = code
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"{server.url}/{setup}", tmp_path / "f", max_bytes=1000))
    assert expected in text
    if setup == "redirect-loop":
        assert len(server.hits) == media.MAX_REDIRECTS + 1


async def test_unreachable_host_does_not_leak_the_url(
    http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    # A port nothing listens on (taken from a socket we close at once).
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"http://127.0.0.1:{port}/f.png?token=s3cret",
                                          tmp_path / "f", max_bytes=1000))
    assert text == "I couldn't reach 127.0.0.1 to download that file."


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "/etc/passwd",
                                 "http://user:pw@example.com/a.png", "javascript:alert(1)"])
async def test_only_http_links_unless_local_is_allowed(
    http: httpx.AsyncClient, transport: RecordingTransport, media_settings: MediaSettings,
    tmp_path: Path, url: str
) -> None:
    fetcher = media.Fetcher(http, media_settings)
    text = await refused(fetcher.fetch_input(Attachment(url=url), tmp_path))
    assert "http" in text or "user name or password" in text
    assert transport.urls == []


async def test_local_files_for_the_console(
    http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path, clips: dict[str, Path]
) -> None:
    src = tmp_path / "mine.png"
    src.write_bytes(PNG)
    fetcher = media.Fetcher(http, media_settings)
    for url in (str(src), src.as_uri()):
        local = await fetcher.fetch_input(Attachment(url=url), tmp_path / "in", allow_local=True)
        assert local.info.format == "png" and local.path != src and src.exists()
    video = await fetcher.fetch_input(Attachment(url=str(clips["webm"])), tmp_path / "in",
                                      allow_local=True)
    assert video.info.format == "webm" and video.path.suffix == ".webm"
    missing = await refused(fetcher.fetch_input(Attachment(url=str(tmp_path / "nope.png")),
                                                tmp_path / "in", allow_local=True))
    assert "There is no file at nope.png" in missing


async def test_fetch_input_rejects_bad_bytes_and_cleans_up(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/cat.png"] = makers.zip_bytes()
    server.files["/login"] = b"<!doctype html><html><title>Slack</title>"
    settings = allowing(media_settings, "127.0.0.1")
    dest = tmp_path / "in"
    fetcher = media.Fetcher(http, settings)
    att = Attachment(url=f"{server.url}/cat.png", filename="cat.png")
    text = await refused(fetcher.fetch_input(att, dest))
    assert "ZIP archive" in text and ".png" in text
    text = await refused(fetcher.fetch_input(Attachment(url=f"{server.url}/login"), dest))
    assert "web page" in text
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
                                     "169.254.169.254", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1",
                                     "2002:0a00:0001::1", "0.0.0.0", "255.255.255.255", "100.64.1.1",
                                     "198.18.0.1", "240.0.0.1"])
def test_forbidden_addresses(address: str) -> None:
    assert guard.is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert not guard.is_forbidden(ipaddress.ip_address(address))


async def test_a_gzip_bomb_hits_the_cap_after_decoding(
    server: FileServer, http: httpx.AsyncClient, media_settings: MediaSettings, tmp_path: Path
) -> None:
    server.files["/z"] = b"\x00" * 5_000_000  # about 5 KB on the wire
    server.gzipped.add("/z")
    server.files["/ok.png"] = PNG
    server.gzipped.add("/ok.png")
    settings = allowing(media_settings, "127.0.0.1")
    fetcher = media.Fetcher(http, settings)
    text = await refused(fetcher.download(f"{server.url}/z", tmp_path / "z", max_bytes=100_000))
    assert "bigger than the 98 KB limit" in text
    ok = await fetcher.download(f"{server.url}/ok.png", tmp_path / "ok", max_bytes=100_000)
    assert ok.read_bytes() == PNG


async def test_the_shared_clients_defaults_never_ride_along(
    server: FileServer, transport: RecordingTransport, media_settings: MediaSettings,
    tmp_path: Path
) -> None:
    server.files["/cat.png"] = PNG
    settings = allowing(media_settings, "127.0.0.1")
    async with httpx.AsyncClient(transport=transport, headers={"Authorization": "Key fal-secret"},
                                 cookies={"session": "s3cret"}, auth=("user", "pw")) as shared:
        await media.Fetcher(shared, settings).download(f"{server.url}/cat.png", tmp_path / "f",
                                                       max_bytes=10_000)
    headers = server.hits[0].headers
    assert "Authorization" not in headers and "Cookie" not in headers
    assert headers["User-Agent"] == "ltx-bot"

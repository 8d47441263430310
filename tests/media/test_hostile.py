"""Hostile media: refused before any cost, or handled in bounded memory.

A red team sent small files that decode to huge pictures: a 151 KB PNG of 1 x 39,000,000
pixels (under the 40-megapixel limit) cost ~500 MB to check and 1.4 GB to resize and was
accepted; eight of them in one /keyframes took 2.7 GB, for a blocked user too, before the
refusal; a 105 KB 6000x6000 PNG took 510 MB. Memory is measured in a fresh child process
(tests/media/hostile.py) so each figure is that case's own.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageOps

from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError
from bot.ports import Attachment, Invocation, Place, User
from tests.fakes.chat import FakeChat
from tests.guard import with_loopback_guard
from tests.media import hostile
from tests.media.conftest import FileServer

MB = 1_000_000
# A refusal costs no more than starting Python and importing the bot (about 62 MB).
REFUSED_PEAK = 120 * MB
# The goal for any input, refused or handled: the whole process under 300 MB.
HANDLED_PEAK = 300 * MB
BLOCKED_TEXT = ("You are blocked from starting jobs with this bot. "
                "Ask an admin if you think this is a mistake.")
MALLORY = User(platform="console", id="mallory", name="Mallory")
ROOM = Place(platform="console", channel="general", workspace="local")


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {
        "tall": hostile.tall_png(root / "tall.png"),
        "square": hostile.square_png(root / "square.png"),
        "bomb": hostile.bomb_png(root / "bomb.png"),
        "long_gif": hostile.long_gif(root / "long.gif", frames=100_000, screen=(8000, 5000)),
        "webp": hostile.big_image(root / "big.webp", (4000, 4000), "WEBP", lossless=True),
    }


def run(op: str, paths: Path | list[Path], tmp_path: Path, **settings: Any) -> dict[str, Any]:
    return hostile.measure(op, paths, tmp_path, settings, env=with_loopback_guard(os.environ))


# ---------------------------------------------------------------- refused from the header


@pytest.mark.parametrize("op", ["probe", "prepare"])
def test_a_one_pixel_wide_strip_is_refused_by_its_side(files: dict[str, Path], tmp_path: Path,
                                                       op: str) -> None:
    assert files["tall"].stat().st_size < 160_000
    result = run(op, files["tall"], tmp_path)
    assert not result["ok"]
    assert result["message"] == ("That image is 1x39000000 pixels; the limit is 8192 pixels "
                                 "on each side.")
    assert result["peak_rss"] < REFUSED_PEAK, result


def test_the_shape_limit_is_checked_too(tmp_path: Path) -> None:
    strip = hostile.blank_png(tmp_path / "strip.png", 8000, 500)  # 16:1, sides and pixels fine
    with pytest.raises(MediaError) as caught:
        media.probe(strip, MediaSettings(tmp_dir=str(tmp_path)))
    assert str(caught.value) == ("That image is 8000x500 pixels, one side 16 times the other; "
                                 "the limit is 8 times.")
    loose = MediaSettings(tmp_dir=str(tmp_path), max_image_aspect=20)
    assert media.probe(strip, loose).width == 8000


def test_a_decompression_bomb_is_refused_before_decoding(files: dict[str, Path],
                                                         tmp_path: Path) -> None:
    result = run("both", files["bomb"], tmp_path)
    assert result["message"] == ("That image is 20000x20000 pixels; the limit is 8192 pixels "
                                 "on each side.")
    assert result["peak_rss"] < REFUSED_PEAK, result


def test_eight_strips_in_one_message_cost_nothing(files: dict[str, Path], tmp_path: Path) -> None:
    result = run("both", [files["tall"]] * 8, tmp_path)
    assert [o["ok"] for o in result["outcomes"]] == [False] * 8
    assert result["peak_rss"] < REFUSED_PEAK, result
    assert result["seconds"] < 5, result


def test_a_webp_too_costly_to_decode_is_refused_by_the_estimate(files: dict[str, Path],
                                                                tmp_path: Path) -> None:
    # 16 megapixels passes the sides, shape and pixel limits; Pillow's WebP decoder would
    # hold about 16 bytes a pixel (a 6000x6000 one took 638 MB to probe before this check).
    result = run("probe", files["webp"], tmp_path)
    assert not result["ok"]
    assert result["message"].startswith("That WebP image is too costly to open safely: "
                                        "4000x4000 pixels would take about ")
    assert "the limit is 191 MB" in result["message"]
    assert result["peak_rss"] < REFUSED_PEAK, result


def _png_with_empty_chunks(path: Path, count: int) -> Path:
    png = io.BytesIO()
    Image.new("RGB", (64, 64)).save(png, "PNG")
    data = png.getvalue()
    end = data.index(b"IEND") - 4
    empty = b"\x00\x00\x00\x00tEXt" + zlib.crc32(b"tEXt").to_bytes(4, "big")
    path.write_bytes(data[:end] + empty * count + data[end:])
    return path


def _jpeg_with_comments(path: Path, count: int) -> Path:
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64)).save(jpeg, "JPEG")
    data = jpeg.getvalue()
    path.write_bytes(data[:2] + b"\xff\xfe\x00\x02" * count + data[2:])
    return path


def _gif_with_comments(path: Path, count: int) -> Path:
    gif = io.BytesIO()
    Image.new("P", (64, 64)).save(gif, "GIF")
    data = gif.getvalue()
    first = data.index(b"\x2c\x00\x00\x00\x00")  # the first image descriptor
    path.write_bytes(data[:first] + b"\x21\xfe\x00" * count + data[first:])
    return path


@pytest.mark.parametrize(
    ("make", "fmt", "limit"),
    [(_png_with_empty_chunks, "PNG", 100_000), (_jpeg_with_comments, "JPEG", 1000),
     (_gif_with_comments, "GIF", 20_000)],
)
def test_files_of_countless_tiny_parts_are_refused_before_pillow_reads_them(
    tmp_path: Path, make: Any, fmt: str, limit: int
) -> None:
    # Pillow reads such parts one at a time: 4 million empty PNG chunks took it 25 s,
    # 3 million JPEG comments 8 s. Twice the limit is refused at once; a tenth passes.
    settings = MediaSettings(tmp_dir=str(tmp_path))
    with pytest.raises(MediaError) as caught:
        media.probe(make(tmp_path / "many", 2 * limit), settings)
    assert str(caught.value) == (f"That {fmt} image is made of more than {limit} parts, far "
                                 "more than any real image has, so I won't open it.")
    assert media.probe(make(tmp_path / "some", limit // 10), settings).width == 64


# ---------------------------------------------------------------- handled in bounded memory


def test_a_6000_square_png_is_checked_and_prepared_under_the_goal(files: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    assert files["square"].stat().st_size < 110_000
    result = run("both", files["square"], tmp_path)
    assert result["ok"] and result["size"] == [1280, 1280]
    assert result["peak_rss"] < HANDLED_PEAK, result
    # The probe proves the picture decodes without holding it.
    assert run("probe", files["square"], tmp_path)["peak_rss"] < REFUSED_PEAK


def test_a_long_gif_is_its_first_frame_only(files: dict[str, Path], tmp_path: Path) -> None:
    # 100,000 frames of 40 megapixels in 1.8 MB.
    result = run("both", files["long_gif"], tmp_path)
    assert result["ok"] and result["size"] == [1280, 800]
    assert result["peak_rss"] < 200 * MB, result
    assert result["seconds"] < 20, result


def test_many_large_inputs_at_once_take_turns(files: dict[str, Path], tmp_path: Path) -> None:
    # Three 6000x6000 PNGs in one message: one at a time (prepare_concurrency = 1), so the
    # process holds one decoded picture, not three.
    result = run("both", [files["square"]] * 3, tmp_path)
    assert all(o["ok"] for o in result["outcomes"])
    assert result["peak_rss"] < HANDLED_PEAK, result


# ---------------------------------------------------------------- the per-process budget


@pytest.mark.parametrize("slots", [1, 2])
async def test_preparation_runs_within_the_budget(slots: int) -> None:
    settings = MediaSettings(prepare_concurrency=slots)
    lock = threading.Lock()
    running = [0]
    most = [0]

    def work(seconds: float) -> float:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(seconds)
        with lock:
            running[0] -= 1
        return seconds

    results = await asyncio.gather(*(media.in_budget(settings, work, 0.05) for _ in range(6)))
    assert results == [0.05] * 6
    assert most[0] == slots


async def test_a_cancelled_caller_keeps_its_slot_until_the_work_ends() -> None:
    settings = MediaSettings(prepare_concurrency=1)
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "slow"

    first = asyncio.create_task(media.in_budget(settings, slow))
    await asyncio.to_thread(started.wait, 10)
    first.cancel()
    second = asyncio.create_task(media.in_budget(settings, lambda: "second"))
    await asyncio.sleep(0.05)
    # The thread still runs (and holds its memory): the next one waits.
    assert not second.done()
    release.set()
    assert await second == "second"
    with pytest.raises(asyncio.CancelledError):
        await first


# ---------------------------------------------------------------- the picture is still right


def test_reduced_preparation_matches_a_full_size_one(tmp_path: Path) -> None:
    # A detailed RGBA picture over four times the final size: reduced by 2 in bands.
    base = Image.radial_gradient("L").resize((2000, 1300))
    noise = Image.effect_noise((2000, 1300), 40)
    rgba = Image.merge("RGBA", (base, noise, ImageChops.invert(base), Image.new("L", base.size, 255)))
    src = tmp_path / "detail.png"
    rgba.save(src)
    out = media.prepare_image(src, tmp_path / "out", max_side=480)
    reference = ImageOps.fit(rgba.convert("RGB"), (480, 320), Image.Resampling.LANCZOS)
    with Image.open(out) as im:
        assert im.size == (480, 320)
        diff = ImageChops.difference(im.convert("RGB"), reference)
    mean = sum(sum(i * n for i, n in enumerate(diff.histogram()[k * 256:(k + 1) * 256]))
               for k in range(3)) / (3 * 480 * 320)
    assert mean < 2.0


def test_a_big_transparent_image_still_turns_white(tmp_path: Path) -> None:
    src = tmp_path / "logo.png"
    Image.new("RGBA", (3000, 2000), (0, 0, 0, 0)).save(src)
    with Image.open(media.prepare_image(src, tmp_path / "out", max_side=640)) as im:
        assert im.getpixel((10, 10)) == (255, 255, 255)


def test_a_big_turned_jpeg_is_decoded_small_and_upright(tmp_path: Path) -> None:
    # Stored 4000x2000 (left red, right blue) with Orientation=6: upright it is 2000x4000.
    img = Image.new("RGB", (4000, 2000), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 2000, 2000))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    src = tmp_path / "phone.jpg"
    src.write_bytes(buf.getvalue())
    with Image.open(media.prepare_image(src, tmp_path / "out")) as im:
        assert im.size == (640, 1280)
        top, bottom = im.getpixel((320, 100)), im.getpixel((320, 1180))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


def test_progressive_jpeg_coefficients_count_in_the_estimate(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (800, 600)).save(buf, "JPEG", progressive=True, subsampling=0)
    (tmp_path / "p.jpg").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    Image.new("RGB", (800, 600)).save(buf, "JPEG", subsampling=2)
    (tmp_path / "b.jpg").write_bytes(buf.getvalue())
    progressive = media.image_header(tmp_path / "p.jpg", "jpeg")
    baseline = media.image_header(tmp_path / "b.jpg", "jpeg")
    assert progressive is not None and baseline is not None
    assert progressive.fixed_bytes_per_pixel == 6.0  # 3 full-size components, 2 bytes each
    assert baseline.fixed_bytes_per_pixel == 0.0 and baseline.scalable


# ---------------------------------------------------------------- cheap refusals come first


def keyframes(server: FileServer, data: bytes, count: int = 8) -> Invocation:
    for i in range(count):
        server.files[f"/tall{i}.png"] = data
    attachments = [Attachment(url=f"{server.url}/tall{i}.png", filename=f"tall{i}.png",
                              content_type="image/png", kind="image") for i in range(count)]
    return Invocation(user=MALLORY, place=ROOM, command="keyframes", text="a flower opens",
                      attachments=attachments)


def told(chat: FakeChat) -> list[str]:
    return [c.text or "" for c in chat.of_kind("tell") if c.user == MALLORY]


async def test_a_blocked_users_hostile_keyframes_download_nothing(
    app: Any, server: FileServer, files: dict[str, Path]
) -> None:
    chat = FakeChat("console")
    app.register_port(chat)
    await app.store.set_blocked(MALLORY.key, True)
    await app.bot.handle(keyframes(server, files["tall"].read_bytes()), chat)
    assert server.hits == []
    assert told(chat) == [BLOCKED_TEXT]
    assert await app.store.ledger_rows() == []


async def test_cooldown_and_running_jobs_refuse_before_any_download(
    app: Any, server: FileServer, files: dict[str, Path], sim: Any
) -> None:
    chat = FakeChat("console")
    app.register_port(chat)
    sim.options.run_seconds = 30
    app.settings.quota.max_concurrent_jobs = 1
    await app.bot.handle(Invocation(user=MALLORY, place=ROOM, command="video", text="a fox"), chat)
    await app.bot.handle(keyframes(server, files["tall"].read_bytes()), chat)
    assert told(chat)[-1].startswith("You already have 1 job running (your limit is 1).")
    app.settings.quota.max_concurrent_jobs = 5
    app.settings.quota.cooldown_seconds = 600
    await app.bot.handle(keyframes(server, files["tall"].read_bytes()), chat)
    assert told(chat)[-1].startswith("Please wait ")
    assert server.hits == []
    await app.bot.handle(Invocation(user=MALLORY, place=ROOM, command="cancel", text="1"), chat)
    await app.runner.wait(1)


async def test_too_few_credits_for_the_cheapest_reading_refuse_before_any_download(
    app: Any, server: FileServer, files: dict[str, Path]
) -> None:
    chat = FakeChat("console")
    app.register_port(chat)
    app.settings.quota.daily_credits = 3  # keyframes cost 4 credits, whatever is attached
    await app.bot.handle(keyframes(server, files["tall"].read_bytes()), chat)
    assert told(chat) == ["This job costs 4 credits, more than your whole daily quota of 3 "
                          "credits. Try a shorter or smaller video, or ask an admin for more "
                          "credits."]
    assert server.hits == []


async def test_a_user_who_may_start_still_gets_the_media_refusal(
    app: Any, server: FileServer, files: dict[str, Path]
) -> None:
    chat = FakeChat("console")
    app.register_port(chat)
    await app.bot.handle(keyframes(server, files["tall"].read_bytes(), count=2), chat)
    assert told(chat) == ["That image is 1x39000000 pixels; the limit is 8192 pixels on each "
                          "side."]
    assert len(server.hits) == 2
    assert await app.store.list_jobs(MALLORY.key) == []


# ---------------------------------------------------------------- ltx-bot parse --attach


def test_parse_reads_only_the_first_bytes_of_an_attachment(tmp_path: Path) -> None:
    # A 3 GB sparse "PNG" (it took 3.1 GB of memory before): only its kind is needed.
    big = tmp_path / "huge.png"
    with big.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
        fh.truncate(3 * 1024**3)
    config = tmp_path / "c.toml"
    config.write_text("")
    # `ltx-bot parse` itself, then this process's own peak (not ru_maxrss: see hostile.py).
    code = ("import sys\nfrom bot import cli\ncode = cli.main(sys.argv[1:])\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0],"
            " file=sys.stderr)\nsys.exit(code)\n")
    done = subprocess.run(
        [sys.executable, "-c", code, "parse", "--config", str(config), "--attach", str(big),
         "a cat yawns"], capture_output=True, text=True, timeout=120,
        env=with_loopback_guard(os.environ), check=False)
    assert done.returncode == 0, done.stderr
    assert '"endpoint": "fal-ai/ltx-2-19b/image-to-video"' in done.stdout
    peak_kb = int(done.stderr.strip().splitlines()[-1].split()[1])
    assert peak_kb * 1024 < 200 * MB, done.stderr

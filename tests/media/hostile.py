"""Hostile media made on the spot, and a child process that measures what checking them costs.

Every file here is small on disk and huge (or endless) once decoded: the shapes a red
team sent. Makers stream their compressed data straight to disk, so making one costs
little memory. `measure` runs probes or preparations in a fresh Python process and
reports its peak RSS, imports included. The peak is the child's own `VmHWM`, not
`getrusage().ru_maxrss`: Linux carries ru_maxrss over fork and exec, so a child of a
300 MB parent would report at least 300 MB whatever it did.

Used by tests/media/test_hostile.py and bench/media.py.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MB = 1_000_000

# PNG colour type -> samples per pixel.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(fh: IO[bytes], kind: bytes, data: bytes) -> None:
    fh.write(struct.pack(">I", len(data)) + kind + data
             + struct.pack(">I", zlib.crc32(kind + data)))


def blank_png(path: Path, width: int, height: int, *, color_type: int = 2, depth: int = 8) -> Path:
    """A PNG of `width`x`height` zero pixels, compressed at zlib's best (about 1000:1), written
    row block by row block: a 1x39,000,000 RGB one is 151 KB, a 6000x6000 one 105 KB."""
    row = b"\x00" * (1 + (width * _CHANNELS[color_type] * depth + 7) // 8)
    comp = zlib.compressobj(9)
    rows_per_block = max(1, (4 * MB) // len(row))
    idat = io.BytesIO()
    done = 0
    while done < height:
        count = min(rows_per_block, height - done)
        idat.write(comp.compress(row * count))
        done += count
    idat.write(comp.flush())
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        _chunk(fh, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
        if color_type == 3:
            _chunk(fh, b"PLTE", b"\x00\x00\x00\xff\xff\xff")
        _chunk(fh, b"IDAT", idat.getvalue())
        _chunk(fh, b"IEND", b"")
    return path


def tall_png(path: Path) -> Path:
    """1 x 39,000,000 pixels (under a 40-megapixel limit), 151 KB."""
    return blank_png(path, 1, 39_000_000)


def square_png(path: Path, side: int = 6000) -> Path:
    """6000x6000 (36 megapixels, under the limit), 105 KB."""
    return blank_png(path, side, side)


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A 1-bit `side`x`side` PNG: a few dozen KB that claims 400 megapixels."""
    return blank_png(path, side, side, color_type=0, depth=1)


# One 1x1 frame: image descriptor, LZW minimum code size 2, codes [clear, 0, end] in 3 bits.
_GIF_FRAME = (b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms
              b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
              b"\x02\x02\x44\x01\x00")


def long_gif(path: Path, frames: int = 200_000, screen: tuple[int, int] = (4000, 4000)) -> Path:
    """A GIF of `frames` tiny frames on a `screen`-sized canvas: about 3.6 MB, a 33-minute
    animation of 16-megapixel frames to anything that plays (or composes) it through."""
    width, height = screen
    with path.open("wb") as fh:
        fh.write(b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00")
        fh.write(b"\x00\x00\x00\xff\xff\xff")  # global colour table: black, white
        fh.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")  # loop forever
        block = _GIF_FRAME * 1000
        for _ in range(frames // 1000):
            fh.write(block)
        fh.write(_GIF_FRAME * (frames % 1000))
        fh.write(b"\x3b")
    return path


def big_image(path: Path, size: tuple[int, int], fmt: str, **save: Any) -> Path:
    """A flat image saved by Pillow (made in this process: call it outside a measurement)."""
    mode = "RGBA" if fmt == "WEBP" and save.get("lossless") else "RGB"
    with Image.new(mode, size, (90, 140, 200)) as im:
        im.save(path, fmt, **save)
    return path


# ---------------------------------------------------------------- measuring in a child


_CHILD = r"""
import asyncio, json, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["root"])
from pathlib import Path
from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError
conf = MediaSettings(**spec["settings"])
out_dir = Path(spec["out_dir"])
# Before the hostile-media work prepare_image took no limits and there was no budget.
kw = {"limits": media.ImageLimits.of(conf)} if hasattr(media, "ImageLimits") else {}

def check(path):
    if spec["op"] in ("probe", "both"):
        info = media.probe(path, conf)
        size = [info.width, info.height]
    if spec["op"] in ("prepare", "both"):
        from PIL import Image
        with Image.open(media.prepare_image(path, out_dir, **kw)) as im:
            size = list(im.size)
    return size

async def one(path):
    run = (lambda fn, *a: media.in_budget(conf, fn, *a)) if hasattr(media, "in_budget") \
        else asyncio.to_thread
    try:
        return {"ok": True, "size": await run(check, path)}
    except MediaError as exc:
        return {"ok": False, "message": str(exc)}

async def every():
    return await asyncio.gather(*(one(Path(p)) for p in spec["paths"]))

started = time.perf_counter()
outcomes = asyncio.run(every())
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"outcomes": outcomes, "seconds": round(time.perf_counter() - started, 3),
                  "peak_rss": peak}))
"""


def measure(op: str, paths: Path | list[Path], out_dir: Path,
            settings: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
            timeout: float = 300, code: Path = ROOT) -> dict[str, Any]:
    """Run `media.probe` ("probe"), `media.prepare_image` ("prepare") or both on each of
    `paths` (together, as one message's attachments are) in a fresh Python process, with
    the `bot` package of the checkout at `code` (another one gives "before" figures).

    Returns {"outcomes": [{"ok", "size" or "message"}...], "seconds", "peak_rss" (bytes,
    of the whole child process)}; with one path, that outcome's fields are also at the top."""
    many = [paths] if isinstance(paths, Path) else list(paths)
    spec = {"root": str(code), "op": op, "paths": [str(p) for p in many], "out_dir": str(out_dir),
            "settings": {"tmp_dir": str(out_dir / "tmp"), **(settings or {})}}
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True,
                          timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if len(many) == 1:
        result.update(result["outcomes"][0])
    return result

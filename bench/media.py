"""Benchmarks: fitting a video under an upload limit, and hostile inputs.

fit: times `bot.media.fit_video` fitting a 121-frame 1280x720 clip with audio under
10 MiB against the ffmpeg CLI (imageio-ffmpeg's binary) doing the same job with the
same plan (libx264 preset, bitrate, VBV buffer, audio stream copy, faststart), and
reports our peak RSS. Each run is a child process so its RSS is its own (os.wait4).

hostile: small files that decode to huge pictures (a 1 x 39,000,000 PNG, a 6000x6000
PNG, a decompression bomb, a GIF of 100,000 40-megapixel frames, the largest pictures
the limits let through, a WebP and a progressive JPEG too costly to decode, eight of
them in one message), each checked and prepared as the bot does (probe, then prepare,
under the per-process budget) in a fresh process. Reports whether each was refused or
handled, how long it took, and the whole process's peak RSS (its VmHWM: Linux carries
ru_maxrss over from the parent). The goal: every case under 300 MB.

Each section prints one JSON object on its own line.

    .venv/bin/python bench/media.py [--runs 3] [--section fit|hostile|all] [--code CHECKOUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageChops, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import media  # noqa: E402
from tests.media import hostile  # noqa: E402

LIMIT = 10 * 1024 * 1024
WIDTH, HEIGHT, FRAMES, FPS = 1280, 720, 121, 25


def make_source(path: Path) -> None:
    """A clip that looks like camera footage to an encoder: moving shapes over a gradient,
    with film grain so it is well above the limit at high quality."""
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "8"}
        aus = out.add_stream("aac", rate=48000)
        aus.bit_rate = 128_000
        aus.layout = "stereo"
        sample = 0
        for i in range(FRAMES):
            grain = Image.effect_noise((WIDTH, HEIGHT), 24)
            red = ImageChops.offset(gradient, i * 8, 0)
            blue = ImageChops.offset(gradient.transpose(Image.Transpose.ROTATE_180), 0, i * 3)
            img = Image.merge("RGB", (red, ImageChops.add(grain, gradient, 2.0), blue))
            draw = ImageDraw.Draw(img)
            for k in range(6):
                cx = (i * (7 + k * 3) + k * 200) % WIDTH
                cy = HEIGHT / 2 + math.sin(i / 10 + k) * 250
                draw.ellipse((cx - 60, cy - 60, cx + 60, cy + 60), fill=(40 * k, 255 - 30 * k, 90))
            frame = av.VideoFrame.from_image(img)  # type: ignore[no-untyped-call]
            frame.pts = i
            out.mux(vs.encode(frame))
            while sample < (i + 1) * 48000 // FPS:
                tone = [0.2 * math.sin(2 * math.pi * 330 * (sample + n) / 48000) for n in range(1024)]
                af = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
                data = struct.pack("<1024f", *tone)
                for plane in af.planes:
                    plane.update(data)
                af.sample_rate, af.pts = 48000, sample
                sample += 1024
                out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))


CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bot import media
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
result = media.fit_video(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds,
                  "size": result.path.stat().st_size if result.path else None,
                  "reencoded": result.reencoded, "reason": result.reason}))
"""


def run_child(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS bytes, stdout) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.decode()


def ffmpeg_argv(src: Path, dest: Path, plan: media.FitPlan) -> list[str]:
    # Only the fit section needs the reference binary (`pip install -e '.[bench]'`).
    import imageio_ffmpeg

    argv = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
            "-y", "-i", str(src), "-map", "0:v:0", "-c:v", "libx264", "-preset", media.X264_PRESET,
            "-b:v", str(plan.video_bps), "-maxrate", str(plan.video_bps),
            "-bufsize", str(int(plan.video_bps * plan.buffer_seconds)), "-pix_fmt", "yuv420p"]
    if (plan.width, plan.height) != (WIDTH, HEIGHT):
        argv += ["-vf", f"scale={plan.width}:{plan.height}"]
    if plan.audio == "copy":
        argv += ["-map", "0:a:0", "-c:a", "copy"]
    argv += ["-movflags", "+faststart", str(dest)]
    return argv


HOSTILE_GOAL = 300 * 1_000_000


def hostile_cases(root: Path) -> dict[str, list[Path]]:
    """Each case's files (made here, before any measurement)."""
    tall = hostile.tall_png(root / "tall.png")
    square = hostile.square_png(root / "square.png")
    return {
        "png_1x39000000": [tall],
        "png_6000x6000": [square],
        "png_bomb_20000x20000": [hostile.bomb_png(root / "bomb.png")],
        "gif_100000_frames_8000x5000": [hostile.long_gif(root / "long.gif", 100_000, (8000, 5000))],
        "png_rgba_8000x5000_largest_allowed": [
            hostile.blank_png(root / "rgba.png", 8000, 5000, color_type=6)],
        "jpeg_8000x5000": [hostile.big_image(root / "big.jpg", (8000, 5000), "JPEG", quality=90)],
        "jpeg_progressive_444_8000x5000": [hostile.big_image(
            root / "prog.jpg", (8000, 5000), "JPEG", quality=90, progressive=True, subsampling=0)],
        "webp_6000x6000": [hostile.big_image(root / "big.webp", (6000, 6000), "WEBP", lossless=True)],
        "keyframes_8x_png_1x39000000": [tall] * 8,
        "keyframes_8x_png_6000x6000": [square] * 8,
    }


def bench_hostile(tmpdir: Path, code: Path) -> dict[str, Any]:
    files = tmpdir / "hostile"
    files.mkdir()
    results: dict[str, Any] = {}
    for name, paths in hostile_cases(files).items():
        report = hostile.measure("both", paths, tmpdir / f"out-{name}", timeout=1800, code=code)
        outcomes = report["outcomes"]
        refused = [o["message"] for o in outcomes if not o["ok"]]
        results[name] = {
            "file_bytes": paths[0].stat().st_size,
            "inputs": len(paths),
            "outcome": "refused" if refused else "handled",
            "message": refused[0] if refused else None,
            "prepared_size": None if refused else outcomes[0]["size"],
            "seconds": report["seconds"],
            "peak_rss_mb": round(report["peak_rss"] / 1e6, 1),
        }
    worst = max(r["peak_rss_mb"] for r in results.values())
    return {"benchmark": "media.hostile", "code": str(code), "cases": results, "worst_peak_rss_mb": worst,
            "goal_mb": HOSTILE_GOAL / 1e6, "all_under_goal": worst * 1e6 < HOSTILE_GOAL,
            "settings": dataclasses.asdict(media.ImageLimits()) | {"prepare_concurrency": 1},
            "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--section", choices=("fit", "hostile", "all"), default="all")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="hostile: measure the bot package of this checkout (before figures)")
    args = parser.parse_args()
    if args.section in ("hostile", "all"):
        with tempfile.TemporaryDirectory(prefix="ltx-bench-hostile-") as tmp:
            print(json.dumps(bench_hostile(Path(tmp), args.code.resolve())), flush=True)
    if args.section in ("fit", "all"):
        bench_fit(args.runs)


def bench_fit(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ltx-bench-media-") as tmp:
        tmpdir = Path(tmp)
        src = tmpdir / "source.mp4"
        make_source(src)
        plan = media.plan_fit(media.read_source(src), LIMIT)
        assert isinstance(plan, media.FitPlan), plan
        ours: list[float] = []
        ours_wall: list[float] = []
        rss: list[int] = []
        theirs: list[float] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        sizes: dict[str, int | None] = {}
        details: dict[str, Any] = {}
        for run in range(runs):
            # Alternate the order so neither side always gets a warm page cache.
            for side in (("ours", "ffmpeg") if run % 2 == 0 else ("ffmpeg", "ours")):
                if side == "ours":
                    outdir = tmpdir / f"ours-{run}"
                    wall, _cpu, peak, text = run_child([sys.executable, "-c", CHILD, str(ROOT), str(src),
                                                  str(outdir), str(LIMIT)])
                    report = json.loads(text)
                    ours.append(report["seconds"])
                    ours_cpu.append(report["cpu_seconds"])
                    ours_wall.append(wall)
                    rss.append(peak)
                    sizes["ours"] = report["size"]
                    details["reencoded"] = report["reencoded"]
                else:
                    dest = tmpdir / f"ffmpeg-{run}.mp4"
                    wall, cpu, _peak, _ = run_child(ffmpeg_argv(src, dest, plan))
                    theirs.append(wall)
                    theirs_cpu.append(cpu)
                    sizes["ffmpeg"] = dest.stat().st_size
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(json.dumps({
            "benchmark": "media.fit_video",
            "clip": f"{FRAMES} frames {WIDTH}x{HEIGHT} @{FPS} fps + AAC",
            "source_bytes": src.stat().st_size,
            "limit_bytes": LIMIT,
            "plan": {"width": plan.width, "height": plan.height, "video_bps": plan.video_bps,
                     "audio": plan.audio, "preset": media.X264_PRESET},
            "runs": runs,
            "cpus": os.cpu_count(),
            "fit_seconds": round(ours_median, 3),
            "fit_process_seconds": round(statistics.median(ours_wall), 3),
            "ffmpeg_cli_seconds": round(theirs_median, 3),
            "ratio_vs_ffmpeg_cli": round(ours_median / theirs_median, 3),
            "ratio_including_python_startup": round(statistics.median(ours_wall) / theirs_median, 3),
            # CPU time is steadier than wall time on a shared machine.
            "fit_cpu_seconds": round(statistics.median(ours_cpu), 3),
            "ffmpeg_cli_cpu_seconds": round(statistics.median(theirs_cpu), 3),
            "cpu_ratio_vs_ffmpeg_cli": round(statistics.median(ours_cpu) / statistics.median(theirs_cpu), 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "fit_seconds_all": [round(x, 2) for x in ours],
            "ffmpeg_cli_seconds_all": [round(x, 2) for x in theirs],
            "fit_peak_rss_mb": round(max(rss) / 1e6, 1),
            "output_bytes": sizes,
            **details,
        }))


if __name__ == "__main__":
    main()

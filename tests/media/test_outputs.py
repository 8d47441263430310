"""Outputs: probing, fitting under an upload limit, last and poster frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest
from PIL import Image

from bot import media
from bot.errors import MediaError
from bot.media import fit
from tests.media import makers

MiB = 1024 * 1024


def test_probe_output(clips: dict[str, Path]) -> None:
    info = media.probe_output(clips["mp4"])
    assert (info.kind, info.format, info.video_codec, info.audio_codec) == ("video", "mp4", "h264", "aac")
    assert (info.width, info.height, info.frames) == (96, 64, 24)
    assert info.fps == pytest.approx(24) and info.duration == pytest.approx(1.0, abs=0.1)
    assert info.has_audio and info.content_type == "video/mp4"
    silent = media.probe_output(clips["frames"])
    assert not silent.has_audio and silent.audio_codec is None and silent.frames == 50


def test_a_fitting_video_is_returned_unchanged(clips: dict[str, Path], tmp_path: Path) -> None:
    result = media.fit_video(clips["mp4"], tmp_path, 10 * MiB)
    assert result.path == clips["mp4"] and not result.reencoded and result.reason is None
    assert result.info is not None and result.info.frames == 24
    assert list(tmp_path.iterdir()) == []


def test_a_40mb_clip_fits_under_10mib_and_keeps_its_sound(noise_clip: Path, tmp_path: Path) -> None:
    source = media.probe_output(noise_clip)
    assert noise_clip.stat().st_size > 35 * MiB
    result = media.fit_video(noise_clip, tmp_path, 10 * MiB)
    assert result.path is not None and result.reencoded and result.reason is None
    size = result.path.stat().st_size
    # Under the limit, yet not wastefully far under it.
    assert 7 * MiB < size <= 10 * MiB
    info = result.info
    assert info is not None
    assert (info.format, info.video_codec, info.audio_codec) == ("mp4", "h264", "aac")
    assert (info.width, info.height) == (source.width, source.height)
    frames, samples = makers.decode_counts(result.path)
    source_frames, source_samples = makers.decode_counts(noise_clip)
    assert frames == source.frames == source_frames
    assert samples == source_samples  # the AAC packets were copied, not re-encoded
    assert info.duration == pytest.approx(source.duration, abs=0.05)
    # faststart: the index comes before the media data, so players can start at once.
    head = result.path.read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    with av.open(str(result.path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_resolution_drops_only_when_the_bitrate_cannot_carry_it(tmp_path: Path) -> None:
    src = makers.make_smooth_clip(tmp_path / "smooth.mp4", frames=48)
    limit = 40_000  # 2 seconds: about 100 kbit/s for a 640x360 picture
    plan = media.plan_fit(media.read_source(src), limit)
    assert isinstance(plan, media.FitPlan)
    assert plan.width < 640 and plan.height < 360 and plan.audio == "encode"
    assert abs(plan.width / plan.height - 640 / 360) < 0.05
    result = media.fit_video(src, tmp_path / "out", limit)
    assert result.path is not None and result.path.stat().st_size <= limit
    assert result.info is not None and result.info.width == plan.width and result.info.has_audio
    frames, samples = makers.decode_counts(result.path)
    assert frames == 48 and samples > 0
    # With room to spare, the picture keeps its size.
    roomy = media.plan_fit(media.read_source(src), 300_000)
    assert isinstance(roomy, media.FitPlan) and (roomy.width, roomy.height) == (640, 360)


def test_webm_with_opus_becomes_mp4_with_aac(tmp_path: Path) -> None:
    src = makers.make_video(tmp_path / "in.webm", "webm", size=(160, 96), frames=48)
    limit = src.stat().st_size - 1
    result = media.fit_video(src, tmp_path / "out", limit)
    assert result.path is not None and result.path.stat().st_size <= limit
    assert result.info is not None
    assert (result.info.format, result.info.video_codec, result.info.audio_codec) == ("mp4", "h264", "aac")
    frames, samples = makers.decode_counts(result.path)
    assert frames == 48 and samples > 0


def test_cannot_fit_returns_no_file(noise_clip: Path, tmp_path: Path) -> None:
    result = media.fit_video(noise_clip, tmp_path / "out", 20_000)
    assert result.path is None and result.info is None
    assert result.reason is not None and "still with the link" in result.reason
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_an_overshoot_is_retried_lower_and_never_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the first plan far too generous: the size check must catch it, retry lower once,
    # and the result must still be under the limit. Noise spends every bit it is given.
    src = makers.make_noise_clip(tmp_path / "noise.mp4", frames=48, size=(320, 180))
    limit = 1 * MiB
    real_plan = media.plan_fit
    attempts: list[int] = []

    def generous(source: media.FitSource, limit_bytes: int) -> media.FitPlan | str:
        plan = real_plan(source, limit_bytes)
        assert isinstance(plan, media.FitPlan)
        return media.FitPlan(plan.width, plan.height, plan.video_bps * 2, plan.audio,
                             plan.audio_bps, plan.buffer_seconds)

    real_transcode = fit._transcode

    def counting(src: Path, dest: Path, plan: media.FitPlan) -> None:
        attempts.append(plan.video_bps)
        real_transcode(src, dest, plan)

    monkeypatch.setattr(fit, "plan_fit", generous)
    monkeypatch.setattr(fit, "_transcode", counting)
    result = media.fit_video(src, tmp_path / "out", limit)
    assert len(attempts) == 2 and attempts[1] < attempts[0] / 1.5
    assert result.path is not None and result.path.stat().st_size <= limit
    leftovers = [p for p in (tmp_path / "out").iterdir() if p != result.path]
    assert leftovers == []


def color_of(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as im:
        pixel = im.convert("RGB").getpixel((im.width // 2, im.height // 2))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def close(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    # Lossy codecs move colours a little; neighbouring frames differ by about 10 in R and G.
    return all(abs(x - y) <= 6 for x, y in zip(a, b, strict=True))


def test_last_frame_is_the_true_last_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.last_frame(clips["frames"], tmp_path)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (96, 64)
    assert close(color_of(out), makers.frame_color(49, 50))
    assert not close(color_of(out), makers.frame_color(48, 50))


@pytest.mark.parametrize("fmt", ["mp4", "mov", "webm"])
def test_last_frame_of_each_container(clips: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    assert close(color_of(media.last_frame(clips[fmt], tmp_path)), makers.frame_color(23, 24))


def test_poster_is_the_middle_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    out = media.poster_frame(clips["frames"], tmp_path)
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (96, 64)
    color = color_of(out)
    assert close(color, makers.frame_color(25, 50)) or close(color, makers.frame_color(24, 50))


def test_frames_from_a_broken_file_are_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    with pytest.raises(MediaError):
        media.last_frame(bad, tmp_path)


def test_two_overshoots_give_up_rather_than_return_a_big_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = makers.make_noise_clip(tmp_path / "noise.mp4", frames=24, size=(320, 180))
    real_plan = media.plan_fit

    def generous(source: media.FitSource, limit_bytes: int) -> media.FitPlan | str:
        plan = real_plan(source, limit_bytes)
        assert isinstance(plan, media.FitPlan)
        return media.FitPlan(plan.width, plan.height, plan.video_bps * 3, plan.audio,
                             plan.audio_bps, plan.buffer_seconds)

    monkeypatch.setattr(fit, "plan_fit", generous)
    monkeypatch.setattr(fit, "_lower", lambda plan, *args: plan)
    result = media.fit_video(src, tmp_path / "out", 300_000)
    assert result.path is None and result.reason is not None
    assert list((tmp_path / "out").iterdir()) == []


def test_a_silent_video_stays_silent(tmp_path: Path) -> None:
    src = makers.make_smooth_clip(tmp_path / "silent.mp4", frames=24, audio=False)
    limit = src.stat().st_size // 2
    result = media.fit_video(src, tmp_path / "out", limit)
    assert result.path is not None and result.path.stat().st_size <= limit
    assert result.info is not None and not result.info.has_audio and result.info.frames == 24


def make_gif(path: Path) -> Path:
    frames = [Image.effect_noise((120, 80), 60).convert("RGB") for _ in range(10)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40)
    return path


def make_prores(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("prores_ks", rate=24)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuva444p10le"
        vs.options = {"profile": "4444"}
        for i in range(12):
            image = Image.effect_noise((160, 96), 40).convert("RGB")
            frame = av.VideoFrame.from_image(image).reformat(format="yuva444p10le")  # type: ignore[no-untyped-call]
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


@pytest.mark.parametrize(("maker", "fmt", "frames"), [(make_gif, "gif", 10), (make_prores, "mov", 12)])
def test_other_ltx2_output_types_fit_as_mp4(tmp_path: Path, maker: Callable[[Path], Path],
                                            fmt: str, frames: int) -> None:
    # LTX-2 can render GIF and ProRes 4444 as well as H.264.
    src = maker(tmp_path / f"out.{fmt}")
    info = media.probe_output(src)
    assert (info.kind, info.format, info.frames) == ("video", fmt, frames)
    assert info.duration is not None and info.duration > 0
    limit = src.stat().st_size // 2
    result = media.fit_video(src, tmp_path / "fit", limit)
    assert result.path is not None and result.path.stat().st_size <= limit
    assert result.info is not None and (result.info.format, result.info.frames) == ("mp4", frames)
    assert media.last_frame(src, tmp_path).exists() and media.poster_frame(src, tmp_path).exists()

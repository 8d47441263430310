"""`ltx-bot chat` end to end for the commands that edit a clip or follow a sound: retake,
restyle, extend with seconds at the start, audio to video, and a finished job retaken
by its number, against the built-in simulator; bad sound files are refused first."""

from __future__ import annotations

from pathlib import Path

from tests.console.helpers import decoded_frames, make_mp4, run_cli, saved_videos, write_config
from tests.console.test_chat import assert_clean
from tests.sim.media import Decoded, distance, mean, sine, wav_bytes


def test_retake_restyle_extend_and_audio(tmp_path: Path) -> None:
    make_mp4(tmp_path / "clip.mp4", frames=96, fps=24)  # 4 s
    (tmp_path / "voice.wav").write_bytes(wav_bytes(sine(3.0, 440.0)))
    (tmp_path / "short.wav").write_bytes(wav_bytes(sine(1.0, 440.0)))
    whole = (tmp_path / "voice.wav").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(whole[: len(whole) // 2])  # a cut WAV, named .mp3
    config = write_config(tmp_path)
    lines = [
        "/retake --video clip.mp4 the dog turns into a cat --from 1 --to 3",
        "/restyle --video clip.mp4 a watercolour",
        "/video --audio-file voice.wav a singer on a stage",
        "/extend --video clip.mp4 the road goes on --seconds 2 --at-start "
        "--model ltx-2.3/extend-video",
        "/video --audio-file cut.mp3 a singer",
        "/video --audio-file short.wav a singer",
        "/retake --video clip.mp4 a cat --from 1 --to 9",
    ]
    args = ["chat", "--config", str(config), "--user", "ann"]
    result = run_cli(args, cwd=tmp_path, stdin="".join(f"{line}\n" for line in lines))
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    saved = saved_videos(result.stdout, tmp_path)
    assert sorted(saved) == [1, 2, 3, 4], result.stdout
    assert decoded_frames(saved[1]) == 96  # a retake keeps the clip's length
    assert decoded_frames(saved[2]) == 96  # so does a restyle
    assert decoded_frames(saved[3]) == 75  # 3 s of sound at 25 fps
    assert decoded_frames(saved[4]) == 96 + 48  # 2 s more, at the clip's 24 fps
    # Judged by its bytes (a WAV, whatever its name) and refused as cut, for nothing.
    assert "That WAV audio file is incomplete" in result.stdout
    assert "takes 2 to 20 s of audio; this file is 1.0 s long" in result.stdout
    assert "The clip is 4.0 s long, so --from 1 --to 9 runs past its end" in result.stdout
    # The card offers the retake as the command to type.
    assert "Retake: /retake #1 --from S --to S <prompt>" in result.stdout

    # A later session retakes the finished job 1 by its number (only its sound this time)
    # and restyles job 2 by its number.
    again = run_cli(args, cwd=tmp_path,
                    stdin="/retake #1 --from 0 --to 2 --replace audio a dog barks\n"
                          "/restyle #2 an oil painting\n")
    assert again.returncode == 0, again.stderr
    assert_clean(again.stderr)
    later = saved_videos(again.stdout, tmp_path)
    assert sorted(later) == [5, 6], again.stdout
    assert decoded_frames(later[6]) == 96  # the restyle of job 2's clip
    parent, child = Decoded(saved[1].read_bytes()), Decoded(later[5].read_bytes())
    assert len(child.frames) == 96
    assert all(distance(mean(a), mean(b)) < 12 for a, b in zip(parent.frames, child.frames,
                                                               strict=True))
    assert abs(child.pitch(0.2, 1.8) - 880) < 40  # the redone sound

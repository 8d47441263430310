"""`ltx-bot chat` end to end: commands piped on stdin, the built-in simulator as backend.

Each test runs the real entry point as a subprocess and checks what a person
would: the `saved:` lines, that each saved mp4 plays to the end with the frame
count that was asked for, the messages for refusals, and the exit code.
"""

from __future__ import annotations

import stat
from pathlib import Path

from tests.console.helpers import (
    decoded_frames,
    expected_frames,
    make_mp4,
    make_png,
    run_cli,
    saved_videos,
    write_config,
)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert " ERROR " not in stderr, stderr


def test_text_image_keyframes_and_extend(tmp_path: Path) -> None:
    make_png(tmp_path / "cat.png")
    make_png(tmp_path / "b.png", color=(10, 90, 220))
    make_mp4(tmp_path / "clip.mp4")
    config = write_config(tmp_path)
    commands = {
        1: "a paper boat on a stormy sea --seconds 2",
        2: "/video --image cat.png the cat yawns --seconds 1",
        3: "/keyframes --image cat.png --image b.png a flower opens --seconds 1",
        4: "/extend --video clip.mp4 the clip goes on",
    }
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="".join(line + "\n" for line in commands.values()))
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    saved = saved_videos(result.stdout, tmp_path)
    assert sorted(saved) == [1, 2, 3, 4], result.stdout
    for job_id, line in commands.items():
        path = saved[job_id]
        assert path.parent == (tmp_path / "outputs").resolve()
        wanted = expected_frames(line.removeprefix("/video "), config)
        if line.startswith("/extend"):
            # LTX-2.3 extend returns the whole clip (24 frames at 24 fps), then 5 s more.
            wanted = 24 + 5 * 24
        assert decoded_frames(path) == wanted, line
    # The simulator is announced, so nobody mistakes these videos for real ones.
    assert "SIMULATED" in result.stderr
    # Each summary follows its `saved:` line with the buttons as commands.
    assert "Re-roll: /reroll 1" in result.stdout


def test_quota_refusal_spends_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, quota={"daily_credits": 3})
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video a boat --seconds 2\n/jobs\n/quota\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    assert "more than your whole daily quota of 3 credits" in result.stdout
    assert "saved: " not in result.stdout
    assert "You have no jobs yet" in result.stdout
    assert "Today: 0 of 3 credits used" in result.stdout


def test_cancel_refunds_and_saves_nothing(tmp_path: Path) -> None:
    # A long simulated queue keeps the job waiting at "fal" until the cancel arrives.
    config = write_config(tmp_path, backend={"sim_queue_seconds": 60.0})
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video a boat --seconds 2\n/cancel 1\n/quota\n/jobs\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    # Said once, on the job's card (`/cancel 1` is the card's Cancel button, typed).
    assert result.stdout.count("Cancelled") == 1, result.stdout
    assert "Cancelled by ann. Your credits were refunded." in result.stdout
    assert "saved: " not in result.stdout
    assert "Today: 0 of " in result.stdout
    assert "#1 cancelled" in result.stdout
    # INFO lines (the job's own, whether or not it reached fal before the cancel) go to
    # the log file; the chat and the screen show none.
    log_text = (tmp_path / "logs" / "ltx-bot.log").read_text()
    assert " INFO bot.jobs." in log_text
    assert " INFO " not in result.stdout + result.stderr


def test_bad_input_is_explained_without_traceback_or_cost(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    lines = [
        "/video hello --bogus 3",
        "/frobnicate now",
        "/video --image nope.png a cat",
        "/video --seconds 4",
        "/admin grant console:bob 50",
        "/cancel 99",
        "/quota",
    ]
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    out = result.stdout
    assert "I don't know the flag --bogus." in out
    assert "I don't know the command /frobnicate." in out
    assert "There is no file at nope.png." in out
    assert "Please describe the video" in out
    assert "Admin commands are for the bot's admins; the operator lists them in [console] admin_users" in out
    assert "There is no job #99" in out
    assert "Today: 0 of " in out and "saved: " not in out


def test_admin_from_config_and_help(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    result = run_cli(["chat", "--config", str(config), "--user", "root"], cwd=tmp_path,
                     stdin="/admin grant console:bob 50\n/help\n")
    assert result.returncode == 0, result.stderr
    assert "Granted 50 credits to console:bob." in result.stdout
    assert "--seconds" in result.stdout  # the help lists the flags


def test_run_without_platforms_is_the_console_on_the_simulator(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["run", "--config", str(config)], cwd=tmp_path,
                     stdin="a lighthouse at dusk --seconds 1\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    assert "starting the console chat" in result.stderr
    assert "SIMULATED" in result.stderr
    [path] = saved_videos(result.stdout, tmp_path).values()
    assert decoded_frames(path) == expected_frames("a lighthouse at dusk --seconds 1", config)


def test_a_piped_script_waits_out_cooldown_and_concurrency(tmp_path: Path) -> None:
    """A script types faster than the quotas allow; it waits where a person would."""
    config = write_config(tmp_path, quota={"cooldown_seconds": 1.0, "max_concurrent_jobs": 1})
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video one --seed 1\n/video two --seed 2\n/video three --seed 3\n/jobs\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    assert "Please wait" not in result.stdout and "already have" not in result.stdout
    assert len(saved_videos(result.stdout, tmp_path)) == 3
    assert "Your recent jobs:" in result.stdout and "\n#3 " in result.stdout


def test_saved_paths_are_relative_to_where_the_bot_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video a boat\n")
    assert result.returncode == 0, result.stderr
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("saved: ")]
    assert line.startswith("saved: outputs/ltx-1-") and line.endswith(".mp4")


def test_command_words_need_no_slash_and_start_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    lines = ["help", "quota", "jobs", "Jobs", "video", "/vdeo a cat", "exit the building",
             "exit", "a boat that never sails"]
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="".join(line + "\n" for line in lines))
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    out = result.stdout
    assert "Job #" not in out and "saved: " not in out  # nothing started, nothing spent
    assert "Make a video" in out and "Today: 0 of " in out
    assert out.count("You have no jobs yet") == 2
    assert "Please describe the video" in out  # `video` alone is the command, without a prompt
    assert "I don't know the command /vdeo. Did you mean /video?" in out
    assert "To leave, type exit alone." in out
    # `exit` left: the line after it was never read as a prompt.
    assert "never sails" not in out


def test_help_is_plain_and_lists_the_consoles_own_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    for user, admin in (("root", True), ("ann", False)):
        result = run_cli(["chat", "--config", str(config), "--user", user], cwd=tmp_path,
                         stdin="/help\n")
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "**" not in out and "`" not in out and "Make a video\n" in out
        for command in ("/reroll <id>", "/extend #<id> <prompt>", "/continue #<id> <prompt>",
                        "/delete <id>", "/quit"):
            assert command in out, command
        assert "--image PATH" in out  # how images are given here
        assert ("/admin grant <user> <credits>" in out) is admin


def test_jobs_show_the_saved_file_then_deleted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                    stdin="/video a boat --seconds 1\n")
    assert first.returncode == 0, first.stderr
    [path] = saved_videos(first.stdout, tmp_path).values()
    # A later session: the built-in simulator's links are gone, the file is not.
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/jobs\n/delete 1\n/jobs\n/delete 1\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    listed = [line for line in result.stdout.splitlines() if line.startswith("#1 done")]
    assert len(listed) == 2, result.stdout
    assert listed[0].endswith(f"a boat {path.resolve()}") and "http" not in listed[0]
    assert listed[1].endswith("a boat · video deleted")
    assert not path.exists()
    assert "Job #1 has no video to delete: it was deleted already." in result.stdout


def test_a_finished_job_is_printed_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video a paper boat --seconds 1\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The summary (after `saved:`), not the status card's final state again after it.
    assert out.count("“a paper boat”") == 1, out
    assert out.count("Re-roll: /reroll 1") == 1, out


def test_logs_go_to_a_private_file_and_only_warnings_to_the_screen(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/video a boat --seconds 1\n")
    assert result.returncode == 0, result.stderr
    log_file = tmp_path / "logs" / "ltx-bot.log"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert f"the log is in {log_file}" in result.stderr
    assert result.stderr.count("the log is in") == 1
    assert " INFO " not in result.stderr + result.stdout
    assert "WARNING" in result.stderr  # the simulator warning still shows
    logged = log_file.read_text()
    assert " INFO bot.sim.server: fal simulator listening" in logged


def test_my_data_then_forget_me(tmp_path: Path) -> None:
    prompt = "a zanzibar quokka juggling"
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin=f"/video {prompt} --seconds 1\n/my-data\n")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    mine = tmp_path / "outputs" / "my-data-ann.json"
    assert "Everything this bot stores about you. saved: outputs/my-data-ann.json" in result.stdout
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600
    assert prompt in mine.read_text()
    # The confirmation shows its button as the words that press it; nothing goes before.
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/forget-me\n/jobs\n/forget-me confirm\n/jobs\n")
    assert result.returncode == 0, result.stderr
    assert "Forget me: /forget-me confirm" in result.stdout
    assert "#1 done" in result.stdout
    assert "Forgotten: 1 job(s) scrubbed" in result.stdout
    assert result.stdout.rstrip().endswith("You have no jobs yet. Try: video a paper boat on a stormy sea")
    assert not mine.exists()
    assert not list((tmp_path / "outputs").glob("ltx-1-*.mp4"))  # the saved video went too
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("bot.sqlite3*"))
    # (ann typed /jobs afterwards, so she is a new user again: only the prompt is checked.)
    assert prompt.encode() not in raw
    assert prompt not in (tmp_path / "logs" / "ltx-bot.log").read_text()


"""`/admin pause` and `/admin resume` on the console, each step a separate `ltx-bot chat`
process on one store: the pause is in the store, so every process sees it."""

from __future__ import annotations

from pathlib import Path

from tests.console.helpers import run_cli, saved_videos, write_config


def _chat(config: Path, cwd: Path, user: str, lines: str) -> str:
    result = run_cli(["chat", "--config", str(config), "--user", user], cwd=cwd, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and " ERROR " not in result.stderr, result.stderr
    return result.stdout


def test_a_pause_set_in_one_process_refuses_in_the_next_until_resumed(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    out = _chat(config, tmp_path, "root", "/admin pause moving servers\n")
    assert "Video generation is paused everywhere" in out

    out = _chat(config, tmp_path, "ann", "/video a lighthouse --seconds 1\n/quota\n/admin resume\n")
    assert "Video generation is paused by an admin: moving servers." in out
    assert "saved: " not in out and "Today: 0 of " in out  # nothing started, nothing charged
    assert "for the bot's admins" in out  # and she cannot lift it

    out = _chat(config, tmp_path, "root", "/admin pause\n/admin resume\n/admin resume\n")
    assert "Video generation is already paused." in out
    assert "Video generation resumes" in out and "Video generation was not paused." in out

    out = _chat(config, tmp_path, "ann", "/video a lighthouse --seconds 1\n")
    assert list(saved_videos(out, tmp_path)) == [1]

"""The moderation log's buttons and the Report button typed on the console (`/report 1`,
`/modblock 1`, `/moddelete 1`), each user a separate `ltx-bot chat` process on one store."""

from __future__ import annotations

from pathlib import Path

from tests.console.helpers import run_cli, saved_videos, write_config


def _chat(config: Path, cwd: Path, user: str, lines: str) -> str:
    result = run_cli(["chat", "--config", str(config), "--user", user], cwd=cwd, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_report_block_and_delete_typed_on_the_console(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    _chat(config, tmp_path, "root", "/admin settings set mod_log_channel mods\n")
    out = _chat(config, tmp_path, "ann", "a lighthouse --seconds 1\n")
    [video] = saved_videos(out, tmp_path).values()
    assert "Report: /report 1" in out
    assert "Job #1 started" in out and "Block user: /modblock 1  Delete video: /moddelete 1" in out

    out = _chat(config, tmp_path, "bob", "/report 1\n/report 1\n/modblock 1\n/moddelete 1\n")
    assert "Thank you: job #1 was reported to this workspace's moderators." in out
    assert "Job #1 reported" in out and "Reported by bob (console:bob)" in out
    assert "You have reported job #1 already." in out
    assert out.count("Only this workspace's moderators (its admins) can use the moderation "
                     "log's buttons.") == 2
    assert video.exists()

    out = _chat(config, tmp_path, "root",
                "/modblock 1\n/moddelete 1\n/admin reports\n/admin settings show\n")
    assert "ann (console:ann) is blocked in this workspace" in out
    assert ("Blocked in this workspace (the moderation log's Block user): ann (console:ann)."
            in out)
    assert "To lift a block: admin unblock-here and the user, e.g. admin unblock-here console:ann." in out
    assert "The video of job #1 is deleted." in out and not video.exists()
    assert "job #1 in console:-: reported by bob (console:bob)" in out

    out = _chat(config, tmp_path, "ann", "a lighthouse --seconds 1\n")
    assert "You are blocked from starting jobs in this workspace." in out
    assert saved_videos(out, tmp_path) == {}
    out = _chat(config, tmp_path, "root", "/admin unblock-here console:ann\n/admin audit\n")
    assert "console:ann is unblocked in this workspace." in out
    assert "block here console:ann: job #1" in out and "delete video console:ann: job #1" in out

"""The console's one workspace and its safety settings, through `ltx-bot chat` (a real
subprocess, commands piped on stdin, the built-in simulator): an admin sets the
blocklist and allowed channels; refused prompts cost nothing; the audit shows it all."""

from __future__ import annotations

from pathlib import Path

from tests.console.helpers import run_cli, saved_videos, write_config


def test_the_console_admin_sets_the_blocklist_and_it_refuses(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    setup = run_cli(["chat", "--config", str(config), "--user", "root"], cwd=tmp_path,
                    stdin="/admin settings set blocklist forbid, bad phrase\n"
                          "/admin settings set blocklist_patterns bl(o|0){2,}d\n")
    assert setup.returncode == 0, setup.stderr
    assert "blocklist is now forbid, bad phrase in this workspace." in setup.stdout
    assert "blocklist_patterns is now bl(o|0){2,}d in this workspace." in setup.stdout
    lines = [
        "a F.O.R.B.I.D cat --seconds 1",
        "a ｆｏｒｂｉｄ cat --seconds 1",
        "a Fórbid cat --seconds 1",
        'a calm lake --negative "b-a-d phrase" --seconds 1',
        "a bl00od moon --seconds 1",
        "a forbidden fruit --seconds 1",  # whole words: this one runs
        "/admin settings show",
    ]
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("That prompt is not allowed here.") == 5, result.stdout
    assert "forbid, bad phrase" not in result.stdout  # the list is never shown to users
    assert sorted(saved_videos(result.stdout, tmp_path)) == [1]
    assert "Admin commands are for the bot's admins" in result.stdout

    audit = run_cli(["chat", "--config", str(config), "--user", "root"], cwd=tmp_path,
                    stdin="/admin audit\n/admin settings reset blocklist\na forbid cat --seconds 1\n")
    assert audit.returncode == 0, audit.stderr
    assert "console:root in console:-: settings set blocklist: 2 entries" in audit.stdout
    assert "blocklist is back to the bot's default in this workspace: none." in audit.stdout
    assert sorted(saved_videos(audit.stdout, tmp_path)) == [2]  # after the reset it runs


def test_allowed_channels_on_the_console(tmp_path: Path) -> None:
    config = write_config(tmp_path, console={"admin_users": ["root"]})
    result = run_cli(["chat", "--config", str(config), "--user", "root"], cwd=tmp_path,
                     stdin="/admin settings set allowed_channels elsewhere\na boat --seconds 1\n")
    assert result.returncode == 0, result.stderr
    assert "In this workspace jobs start only in #elsewhere. Please start yours there." in result.stdout
    assert saved_videos(result.stdout, tmp_path) == {}

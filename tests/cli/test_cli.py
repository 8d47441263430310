"""The `ltx-bot` command line: arguments, check-config, parse, health, logging."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from bot import cli, heartbeat, maintenance
from bot.config import Settings
from bot.store import DatabaseFileRefused
from tests.guard import with_loopback_guard

BIN = Path(sys.executable).parent / "ltx-bot"

SECRETS = {
    "FAL_KEY": "fal-SECRET-1111aaaa",
    "DISCORD_TOKEN": "discord-SECRET-2222bbbb",
    "SLACK_BOT_TOKEN": "xoxb-SECRET-3333cccc",
    "SLACK_APP_TOKEN": "xapp-SECRET-4444dddd",
    "SLACK_SIGNING_SECRET": "signing-SECRET-5555eeee",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LTX_BOT") and k not in SECRETS}
    env.update(extra)
    return with_loopback_guard(env)


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=60)


# ---------------------------------------------------------------- arguments


def test_config_and_user_before_or_after_the_command() -> None:
    args, _ = cli.parse_args(["--config", "a.toml", "--user", "ann", "chat"])
    assert (args.command, args.config, args.user) == ("chat", "a.toml", "ann")
    args, _ = cli.parse_args(["chat", "--config", "b.toml", "--user", "bob"])
    assert (args.config, args.user) == ("b.toml", "bob")
    args, _ = cli.parse_args(["run"])
    assert (args.config, args.user) == (None, None)


def test_parse_keeps_message_flags_in_order() -> None:
    args, _ = cli.parse_args(["parse", "--attach", "a.png", "a", "boat", "--seconds", "4",
                              "--config", "c.toml", "--ar=9:16"])
    assert args.attach == ["a.png"] and args.config == "c.toml"
    assert args.text == ["a", "boat", "--seconds", "4", "--ar=9:16"]
    args, _ = cli.parse_args(["--config", "c.toml", "parse", "--", "--config", "is", "text"])
    assert args.text == ["--config", "is", "text"]


def test_sim_passes_its_own_flags_through() -> None:
    args, extra = cli.parse_args(["sim", "--port", "9999", "--config", "c.toml"])
    assert args.command == "sim" and args.config == "c.toml" and extra == ["--port", "9999"]
    args, extra = cli.parse_args(["--user", "ann", "sim", "--fail-rate=0.5", "--conf=d.toml",
                                  "--queue-seconds", "0"])
    assert args.config == "d.toml" and extra == ["--fail-rate=0.5", "--queue-seconds", "0"]


def test_sim_help_shows_the_simulators_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parse_args(["sim", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ltx-bot sim ")
    for option in ("--host HOST", "--port PORT", "--queue-seconds", "--run-seconds", "--concurrency",
                   "--fail-rate", "--drop-stream-rate", "--error-rate", "--seed", "--config FILE"):
        assert option in out, option
    assert "backend.sim_*" in out  # where the defaults come from


def test_sim_refuses_an_unknown_option_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parse_args(["sim", "--prot", "3"])
    assert info.value.code == 2
    assert "unrecognized arguments: --prot 3" in capsys.readouterr().err


def test_unknown_option_for_other_commands_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.parse_args(["check-config", "--frobnicate"])
    assert info.value.code == 2
    assert "--frobnicate" in capsys.readouterr().err


# ---------------------------------------------------------------- check-config


def test_check_config_never_prints_a_secret(tmp_path: Path) -> None:
    file_secrets = {"fal": "fal-FILESECRET-9999", "disc": "disc-FILESECRET-8888",
                    "hook": "hooktoken-FILESECRET-7777"}
    config = tmp_path / "config.toml"
    config.write_text(
        "[logging]\nlevel = \"DEBUG\"\n"
        f"[backend]\nfal_key = \"{file_secrets['fal']}\"\n"
        f"webhook_url = \"https://bot.example/hook?token={file_secrets['hook']}\"\n"
        f"[discord]\ntoken = \"{file_secrets['disc']}\"\n"
    )
    env = clean_env(**SECRETS, LTX_BOT__SLACK__MODE="socket")
    result = run(["check-config", "--config", str(config)], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for secret in [*SECRETS.values(), *file_secrets.values()]:
        assert secret not in output
    assert 'fal_key = "<set, redacted>"' in result.stdout
    assert "adapter: discord" in result.stdout and "adapter: slack (Socket Mode" in result.stdout
    assert "backend: fal queue at https://queue.fal.run (key set)" in result.stdout
    as_json = run(["check-config", "--json", "--config", str(config)], cwd=tmp_path, env=env)
    report = json.loads(as_json.stdout)
    assert report["settings"]["slack"]["signing_secret"] == "<set, redacted>"
    for secret in [*SECRETS.values(), *file_secrets.values()]:
        assert secret not in as_json.stdout + as_json.stderr


def test_check_config_invalid_names_key_and_line_without_the_secret(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[backend]\nfal_key = "fal-LEAK-123456"\n\n[quota]\ndaily_credit = 5\n')
    result = run(["check-config", "--config", str(config)], cwd=tmp_path)
    assert result.returncode == 2
    assert f"quota.daily_credit: unknown key; did you mean 'daily_credits'? ({config} line 5)" in result.stderr
    assert "fal-LEAK-123456" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_defaults_mean_console_on_the_simulator(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert cli.main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "adapter: console chat" in out
    assert "backend: built-in simulator (no fal key): videos are SIMULATED" in out
    assert "# token = (not set)" in out


HALF_CONFIGURED = [
    pytest.param({"SLACK_BOT_TOKEN": SECRETS["SLACK_BOT_TOKEN"]}, "socket",
                 "the app token (SLACK_APP_TOKEN or slack.app_token) is missing for Socket Mode",
                 id="socket-without-app-token"),
    pytest.param({"SLACK_BOT_TOKEN": SECRETS["SLACK_BOT_TOKEN"]}, "http",
                 "the signing secret (SLACK_SIGNING_SECRET or slack.signing_secret) is missing "
                 "for HTTP mode", id="http-without-signing-secret"),
    pytest.param({"SLACK_APP_TOKEN": SECRETS["SLACK_APP_TOKEN"]}, "socket",
                 "the bot token (SLACK_BOT_TOKEN or slack.bot_token) is missing for Socket Mode",
                 id="socket-without-bot-token"),
    pytest.param({"SLACK_SIGNING_SECRET": SECRETS["SLACK_SIGNING_SECRET"]}, "socket",
                 "the bot token (SLACK_BOT_TOKEN or slack.bot_token) and the app token "
                 "(SLACK_APP_TOKEN or slack.app_token) are missing for Socket Mode",
                 id="socket-with-only-a-signing-secret"),
]


@pytest.mark.parametrize(("credentials", "mode", "missing"), HALF_CONFIGURED)
def test_half_configured_slack_stops_run_and_check_config(
        tmp_path: Path, credentials: dict[str, str], mode: str, missing: str) -> None:
    env = clean_env(**credentials, LTX_BOT__SLACK__MODE=mode)
    checked = run(["check-config"], cwd=tmp_path, env=env)
    assert checked.returncode == 2, checked.stdout
    assert f"# PROBLEM: Slack is half-configured: {missing}" in checked.stdout
    assert f"adapter: slack: not started ({missing})" in checked.stdout
    started = run(["run"], cwd=tmp_path, env=env)
    # Refused before anything starts: no terminal chat reading its input, no database.
    assert started.returncode == 2, started.stdout + started.stderr
    assert f"ltx-bot: Slack is half-configured: {missing}; set what is missing" in started.stderr
    assert started.stdout == "" and "terminal chat" not in started.stderr
    assert not list(tmp_path.glob("*.sqlite3"))
    for secret in credentials.values():
        assert secret not in checked.stdout + started.stdout + started.stderr


def test_chat_starts_no_platform_so_a_half_configured_one_does_not_stop_it(tmp_path: Path) -> None:
    env = clean_env(SLACK_BOT_TOKEN=SECRETS["SLACK_BOT_TOKEN"])
    result = run(["chat", "--user", "ann"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "half-configured" not in result.stderr


def test_discord_settings_without_a_token_are_not_half_configured(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[discord]\napi_url = "http://127.0.0.1:9/api/v10"\nallowed_guilds = [1]\n')
    checked = run(["check-config", "--config", str(config)], cwd=tmp_path, env=clean_env(DISCORD_TOKEN=""))
    assert checked.returncode == 0, checked.stdout
    assert "PROBLEM" not in checked.stdout and "adapter: console chat" in checked.stdout
    # Nothing configured at all: `run` is the terminal chat (here it reads no input and ends).
    started = run(["run", "--config", str(config)], cwd=tmp_path, env=clean_env(DISCORD_TOKEN=""))
    assert started.returncode == 0, started.stderr
    assert "starting the console chat" in started.stderr


def test_fal_backend_without_key_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[backend]\nkind = "fal"\n')
    assert cli.main(["check-config", "--config", str(config)]) == 2
    assert "PROBLEM: backend.kind = fal but no fal key is set" in capsys.readouterr().out
    assert cli.main(["run", "--config", str(config)]) == 2
    assert "no fal key is set" in capsys.readouterr().err


def test_log_formatter_scrubs_secrets() -> None:
    stream = io.StringIO()
    settings = Settings.model_validate({"discord": {"token": "tok-abcdef-123"}})
    cli.setup_logging(settings, stream=stream)
    try:
        logging.getLogger("some.library").warning("sending Authorization: Bot %s", "tok-abcdef-123")
    finally:
        cli.setup_logging(None, stream=sys.stderr)
    assert "tok-abcdef-123" not in stream.getvalue()
    assert "Authorization: Bot <redacted>" in stream.getvalue()


# ---------------------------------------------------------------- parse


def test_parse_prints_the_request(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    image = tmp_path / "cat.png"
    Image.new("RGB", (64, 48), (1, 2, 3)).save(image)
    code = cli.main(["parse", "--config", str(config), "--attach", str(image),
                     "the cat yawns", "--seconds", "2", "--seed", "7"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint"] == "fal-ai/ltx-2-19b/image-to-video"
    assert data["input"]["prompt"] == "the cat yawns" and data["input"]["seed"] == 7
    assert data["input"]["image_url"] == str(image)
    assert data["estimate"]["credits"] > 0 and data["estimate"]["usd"] > 0


def test_parse_selects_ltx23_22b_for_a_prompt_with_a_seed(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Issue 12's done-when: `ltx-bot parse "a fox runs through snow --seed 42"`."""
    config = tmp_path / "c.toml"
    config.write_text("")
    assert cli.main(["parse", "--config", str(config), "a fox runs through snow --seed 42"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint"] == "fal-ai/ltx-2.3-22b/text-to-video"
    assert data["input"]["seed"] == 42 and data["input"]["prompt"] == "a fox runs through snow"
    assert set(data) == {"endpoint", "input", "estimate", "notes"} and data["notes"] == []
    assert set(data["estimate"]) == {"usd", "credits"}


def test_parse_reads_leading_command_words(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tests.media.makers import make_video

    config = tmp_path / "c.toml"
    config.write_text("")
    clip = make_video(tmp_path / "clip.mp4", frames=192, fps=24)  # 8 s
    assert cli.main(["parse", "--config", str(config), "--attach", str(clip),
                     "retake the dog turns into a cat --from 2 --to 5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["endpoint"] == "fal-ai/ltx-2.3/retake-video"
    assert data["input"] == {"video_url": str(clip), "prompt": "the dog turns into a cat",
                             "start_time": 2.0, "duration": 3.0,
                             "retake_mode": "replace_audio_and_video"}
    # The clip's length is read: a range past its end is refused with the limits.
    assert cli.main(["parse", "--config", str(config), "--attach", str(clip),
                     "retake rain --from 6 --to 9"]) == 2
    assert "The clip is 8.0 s long" in capsys.readouterr().err
    assert cli.main(["parse", "--config", str(config), "a fox --model ltx-2.3 --seconds 7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"]["duration"] == 8 and "--seconds 7 became 8" in data["notes"][0]
    assert data["estimate"] == {"usd": 0.64, "credits": 64}


def test_parse_bad_input_is_a_message_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    assert cli.main(["parse", "--config", str(config), "a boat --sedd 4"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "I don't know the flag --sedd. Did you mean --seed?" in captured.err
    assert "Traceback" not in captured.err


# ---------------------------------------------------------------- health


def test_health_checks_database_and_heartbeat(tmp_path: Path) -> None:
    settings = Settings.model_validate({"database": {"path": str(tmp_path / "bot.sqlite3")}})
    ok, message = maintenance.health(settings, max_age=60, require_heartbeat=True)
    assert not ok and "no database" in message
    sqlite3.connect(tmp_path / "bot.sqlite3").execute("CREATE TABLE t (x)").connection.close()
    ok, message = maintenance.health(settings, max_age=60, require_heartbeat=False)
    assert ok
    ok, message = maintenance.health(settings, max_age=60, require_heartbeat=True)
    assert not ok and "no `ltx-bot run` or `ltx-bot chat` is running" in message
    beat = heartbeat.Heartbeat(settings.data_dir, "chat", host="box", pid=4242)
    beat.write()
    ok, message = maintenance.health(settings, max_age=60, require_heartbeat=True)
    assert ok and "`chat` (pid 4242 on box)" in message, message
    old = json.loads(beat.path.read_text())
    beat.path.write_text(json.dumps({**old, "time": time.time() - 600}))
    ok, message = maintenance.health(settings, max_age=60, require_heartbeat=True)
    assert not ok and "stuck or stopped" in message and "pid 4242" in message


def test_health_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "bot.sqlite3").write_bytes(b"this is not sqlite" * 100)
    settings = Settings.model_validate({"database": {"path": str(tmp_path / "bot.sqlite3")}})
    # One message that names the file and what to do (the command line exits 2 with it).
    with pytest.raises(DatabaseFileRefused) as refused:
        maintenance.health(settings, max_age=60, require_heartbeat=False)
    assert f"{tmp_path / 'bot.sqlite3'} is damaged (file is not a database)" in str(refused.value)
    assert "ltx-bot backup" in str(refused.value)


def test_health_command_exit_codes(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "bot.sqlite3"}"\n')
    assert cli.main(["health", "--config", str(config)]) == 1
    conn = sqlite3.connect(tmp_path / "bot.sqlite3")
    conn.execute("CREATE TABLE t (x)")  # a database with something in it (0 bytes is refused)
    conn.close()
    heartbeat.Heartbeat(tmp_path, "run").write()  # data_dir: the database's folder
    assert cli.main(["health", "--config", str(config)]) == 0
    (tmp_path / "bot.sqlite3").write_bytes(b"")
    assert cli.main(["health", "--config", str(config)]) == 2


# ---------------------------------------------------------------- backup


def test_backup_copies_a_live_wal_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    live = sqlite3.connect(db)
    live.execute("PRAGMA journal_mode = WAL")
    live.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, prompt TEXT)")
    live.executemany("INSERT INTO jobs (prompt) VALUES (?)", [(f"p{i}",) for i in range(100)])
    live.commit()  # committed into the WAL file, not yet checkpointed into the main file
    assert (tmp_path / "bot.sqlite3-wal").stat().st_size > 0
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\npath = "{db}"\n')
    dest = tmp_path / "backups" / "copy.sqlite3"
    try:
        assert cli.main(["backup", "--config", str(config), str(dest)]) == 0
        copy = sqlite3.connect(dest)
        assert copy.execute("SELECT count(*), max(prompt) FROM jobs").fetchone() == (100, "p99")
        copy.close()
        # Never overwrite an earlier backup.
        assert cli.main(["backup", "--config", str(config), str(dest)]) == 1
    finally:
        live.close()
    assert not list(dest.parent.glob("*.partial"))


def test_backup_without_a_database_fails(tmp_path: Path) -> None:
    settings = Settings.model_validate({"database": {"path": str(tmp_path / "none.sqlite3")}})
    ok, message = maintenance.backup(settings, tmp_path / "copy.sqlite3")
    assert not ok and "no database" in message
    assert not (tmp_path / "copy.sqlite3").exists()


def test_interaction_tokens_never_reach_the_log() -> None:
    """Per-request Discord tokens are in webhook URLs and MessageRef.extra; neither may be logged."""
    import io
    import logging

    from bot.cli import RedactingFormatter
    from bot.ports import MessageRef

    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpxd2VydHk"
    ref = MessageRef("discord", "1", "2", {"interaction_token": token, "thread": "t"})
    assert token not in repr(ref) and "'thread': 't'" in repr(ref)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", []))
    log = logging.getLogger("tests.redaction")
    log.addHandler(handler)
    try:
        log.warning("PATCH https://discord.com/api/v10/webhooks/123456/%s/messages/@original", token)
        log.warning("POST /interactions/987/%s/callback", token)
    finally:
        log.removeHandler(handler)
    assert token not in stream.getvalue()
    assert stream.getvalue().count("<redacted>") == 2

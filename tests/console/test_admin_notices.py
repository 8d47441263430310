"""The bot's admins told in the console's chat, not only in the log: whoever runs the
terminal runs the bot, so the fal account failing (fal answers 403 "User is locked.
Reason: Exhausted balance") and a budget alert for the operator are printed there as
"For the bot's admins: ..."."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

from adapters.console import ADMIN_NOTICE, ConsoleAdapter, ConsolePort, console_user
from bot.config import Settings
from bot.model import JobState
from bot.pause import ACCOUNT_TEXT
from tests.console.helpers import run_cli, saved_videos, write_config


async def test_a_fal_account_pause_is_printed_once_while_the_job_waits(
        app: Any, settings: Settings, sim: Any) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=False)
    app.register_port(port)
    app.runner.rt.pause_poll_seconds = 0.05
    chat = ConsoleAdapter(app, port, console_user("ann", settings))
    sim.fail_account("locked")
    await chat.handle_line("a lighthouse --seconds 1")
    async with asyncio.timeout(30):
        while not port.admin_notices:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    [told] = port.admin_notices
    assert told.startswith(ACCOUNT_TEXT) and "User is locked. Reason: Exhausted balance" in told
    assert f"{ADMIN_NOTICE}{told}" in out.getvalue().splitlines()
    assert (await app.store.get_job(1)).state is JobState.WAITING

    # Not told again while the job waits, nor for a command the pause refuses.
    await chat.handle_line("another lighthouse --seconds 1")
    assert await app.runner.pauses.probe_once() is False
    await asyncio.sleep(0.3)
    assert port.admin_notices == [told]
    sim.fail_account(None)
    assert await app.runner.pauses.probe_once() is True
    async with asyncio.timeout(30):
        done = await app.runner.wait(1)
    assert done.state is JobState.DONE, done.error_message
    assert out.getvalue().count(ADMIN_NOTICE) == 1


def _chat(config: Path, cwd: Path, user: str, lines: str) -> str:
    result = run_cli(["chat", "--config", str(config), "--user", user], cwd=cwd, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _one_job_costs(tmp_path: Path) -> int:
    config = write_config(tmp_path)
    out = _chat(config, tmp_path, "ann", "a lighthouse --seconds 1\n/quota\n")
    assert list(saved_videos(out, tmp_path)) == [1]
    found = re.search(r"Today: (\d+) of", out)
    assert found is not None, out
    return int(found.group(1))


def test_the_global_budget_alert_is_printed_even_with_a_mod_log(tmp_path: Path) -> None:
    used = _one_job_costs(tmp_path)
    config = write_config(tmp_path, console={"admin_users": ["root"]},
                          quota={"global_daily_credits": int(used * 2 / 0.8)})
    _chat(config, tmp_path, "root", "/admin settings set mod_log_channel mods\n")
    out = _chat(config, tmp_path, "bob", "a lighthouse --seconds 1\n")
    notices = [line for line in out.splitlines() if line.startswith(ADMIN_NOTICE)]
    assert len(notices) == 1, out
    assert notices[0].startswith(f"{ADMIN_NOTICE}Budget alert: The bot has used")
    assert "Budget alert" in out.replace(notices[0], "")  # the moderation log's entry too


def test_a_budget_alert_without_a_mod_log_is_printed(tmp_path: Path) -> None:
    # The console has no server of its own (no workspace budget): the bot's daily one.
    used = _one_job_costs(tmp_path)
    limit = int(used * 2 / 0.8)
    config = write_config(tmp_path, quota={"global_daily_credits": limit})
    out = _chat(config, tmp_path, "bob", "a lighthouse --seconds 1\n")
    notices = [line for line in out.splitlines() if line.startswith(ADMIN_NOTICE)]
    assert notices == [f"{ADMIN_NOTICE}Budget alert: The bot has used {2 * used} of its {limit} "
                       f"daily credits for everyone ({int(100 * 2 * used / limit)}%)."], out

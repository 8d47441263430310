"""`ltx-bot`: run, chat, sim, parse, check-config, health, backup.

Every command takes `--config FILE` and `--user NAME`, before or after the
command name. Exit codes: 0 ok, 1 failure at run time, 2 bad configuration or
bad input (the message says which key or flag).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomlkit
from pydantic import BaseModel, SecretStr

from bot.config import ConfigError, Settings, load_settings, redacted_dump
from bot.errors import UserError
from bot.logfile import PrivateFileHandler, chat_handlers
from bot.plugins import GROUP, Adapters, PlatformAdapter, PluginError, Service, load_adapters

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("ltx-bot")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
HEARTBEAT_SECONDS = 15.0
HEARTBEAT_MAX_AGE = 90.0


# ---------------------------------------------------------------- logging


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret the settings hold (each `SecretStr`, in every section), for scrubbing logs."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found += secret_values(value)
    return found


class RedactingFormatter(logging.Formatter):
    """Replaces known secret values in every formatted record, tracebacks included.

    Code never logs secrets on purpose; this catches what a library might echo
    (a request URL, a repr) at DEBUG level.
    """

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    # Interaction tokens are per-request secrets no config knows; a platform library may
    # print them inside webhook and callback URLs at DEBUG level.
    _TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return self._TOKEN_IN_URL.sub(r"\1<redacted>", text)


def setup_logging(settings: Settings | None, *, stream: Any = None,
                  handlers: Sequence[logging.Handler] = ()) -> None:
    """Log lines to `stream` (stderr by default), or to `handlers` (a terminal chat's:
    bot.logfile.chat_handlers)."""
    level = settings.logging.level if settings is not None else "INFO"
    formatter = RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
        secret_values(settings) if settings is not None else [],
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, PrivateFileHandler):  # ours: its file is closed, not leaked
            old.close()
    for handler in handlers or [logging.StreamHandler(stream or sys.stderr)]:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    if level != "DEBUG":
        # One INFO line per HTTP request would drown the bot's own log lines.
        for noisy in ("httpx", "httpcore", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------- arguments


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # On the subcommands the default is SUPPRESS, so `ltx-bot --config X run` is not
    # overwritten by the subparser's default.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="config file (default: $LTX_BOT_CONFIG, ./config.toml, /etc/ltx-bot/config.toml)")
    parser.add_argument("--user", metavar="NAME", default=default,
                        help="user name for the terminal chat (default: your login name)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ltx-bot",
        description="A chat bot that turns chat commands into LTX Video generations.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("run", help="run the bot on every configured chat platform, else the terminal chat")
    _common(p, top=False)
    p = sub.add_parser("chat", help="chat with the bot in this terminal (one command per line)")
    _common(p, top=False)
    p = sub.add_parser("sim", help="run the fal-compatible simulator standalone",
                       description="Options after `sim` (--host, --port, --queue-seconds, "
                       "--run-seconds, --concurrency, --fail-rate) go to the simulator.")
    _common(p, top=False)
    p = sub.add_parser("parse", help="show the fal request a message would make, without running it",
                       usage="ltx-bot parse [--attach PATH_OR_URL]... TEXT")
    _common(p, top=False)
    p.add_argument("--attach", action="append", default=[], metavar="PATH_OR_URL",
                   help="an image or video, as if attached to the message (repeatable)")
    p.add_argument("text", nargs="*", help="the message: [/video|/keyframes|/extend|/quote] prompt --flags")
    p = sub.add_parser("check-config", help="validate the configuration and show what `run` would start")
    _common(p, top=False)
    p.add_argument("--json", action="store_true", help="print the effective settings as JSON")
    p = sub.add_parser("backup", help="copy the database consistently, also while the bot runs")
    _common(p, top=False)
    p.add_argument("dest", metavar="DEST", help="the backup file to write (must not exist)")
    p = sub.add_parser("health", help="exit 0 when the database opens and `run` is alive (for HEALTHCHECK)")
    _common(p, top=False)
    p.add_argument("--max-age", type=float, default=HEARTBEAT_MAX_AGE, metavar="SECONDS",
                   help=f"oldest acceptable heartbeat (default {HEARTBEAT_MAX_AGE:g})")
    p.add_argument("--no-heartbeat", action="store_true",
                   help="only check that the database opens (no running bot needed)")
    return parser


def _split_parse_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """For `parse`, everything that is not one of our options is message text.

    The message has flags of its own (`--seconds 4`) that argparse must not see,
    so they are moved behind `--` in their original order.
    """
    ours = {"--config", "--user", "--attach"}
    head: list[str] = []
    text: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            text.extend(argv[i + 1 :])
            break
        name = token.split("=", 1)[0]
        if name in ours:
            head.append(token)
            if "=" not in token and i + 1 < len(argv):
                head.append(argv[i + 1])
                i += 1
        elif token in ("-h", "--help") and not text:
            head.append(token)
        else:
            text.append(token)
        i += 1
    return head, text


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parse argv; returns (namespace, extra args for `sim`)."""
    parser = build_parser()
    argv = list(argv)
    # Find the command word to treat `parse` and `sim` arguments specially.
    index = next((i for i, a in enumerate(argv) if not a.startswith("-")
                  and (i == 0 or argv[i - 1] not in ("--config", "--user"))), None)
    if index is not None and argv[index] == "parse":
        head, text = _split_parse_argv(argv[index + 1 :])
        args = parser.parse_args([*argv[: index + 1], *head])
        args.text = text
        return args, []
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "sim":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args, extra


# ---------------------------------------------------------------- check-config


def plan(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """What `run` would start: (adapter lines, backend lines, problems that stop it)."""
    found = load_adapters()
    adapters = [line for p in found.platforms if (line := p.describe(settings)) is not None]
    problems: list[str] = []
    if not configured_platforms(found, settings):
        if found.terminal is None:
            problems.append(f"no chat platform is configured and no terminal adapter is "
                            f"installed (entry points {GROUP}): reinstall ltx-bot")
        else:
            adapters.append(f"{found.terminal.describe} ({_no_credentials(found)})")
    has_key = settings.backend.fal_key is not None and bool(settings.backend.fal_key.get_secret_value())
    backend: list[str] = []
    if settings.uses_simulator:
        reason = "backend.kind = sim" if settings.backend.kind == "sim" else "no fal key"
        backend.append(
            f"built-in simulator ({reason}): videos are SIMULATED, nothing is spent at fal"
        )
    else:
        if not has_key:
            problems.append("backend.kind = fal but no fal key is set (FAL_KEY or backend.fal_key)")
        backend.append(f"fal queue at {redacted_dump(settings)['backend']['fal_queue_url']}"
                       + (" (key set)" if has_key else ""))
    return adapters, backend, problems


def configured_platforms(found: Adapters, settings: Settings) -> list[PlatformAdapter]:
    return [p for p in found.platforms if p.configured(settings)]


def _no_credentials(found: Adapters) -> str:
    """Why the terminal runs: no credentials for any installed platform adapter."""
    if not found.platforms:
        return "no chat platform adapter is installed"
    return f"no {' or '.join(p.title for p in found.platforms)} credentials configured"


def _toml_value(value: Any) -> str:
    return str(tomlkit.item(value).as_string())


def render_settings(data: dict[str, Any], prefix: str = "") -> list[str]:
    """TOML-looking text of the redacted settings; unset optional keys shown as comments."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append(f"[{prefix}]")
    for key, value in scalars.items():
        if value is None:
            lines.append(f"# {key} = (not set)")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    if prefix and (scalars or not tables):
        lines.append("")
    for key, value in tables.items():
        name = f"{prefix}.{key}" if prefix else key
        lines.extend(render_settings(value, name))
    return lines


def check_config(settings: Settings, path: Path | None, *, as_json: bool, out: Any) -> int:
    adapters, backend, problems = plan(settings)
    source = str(path) if path else "none (defaults and environment only)"
    if as_json:
        report = {"config_file": str(path) if path else None, "settings": redacted_dump(settings),
                  "adapters": adapters, "backend": backend, "problems": problems}
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write(f"# config file: {source}\n")
        out.write("# effective settings (secrets redacted):\n\n")
        out.write("\n".join(render_settings(redacted_dump(settings))).rstrip() + "\n\n")
        out.write("# `ltx-bot run` would start:\n")
        for line in adapters:
            out.write(f"#   adapter: {line}\n")
        for line in backend:
            out.write(f"#   backend: {line}\n")
        for line in problems:
            out.write(f"# PROBLEM: {line}\n")
    return EXIT_USAGE if problems else EXIT_OK


# ---------------------------------------------------------------- health


def heartbeat_path(settings: Settings) -> Path:
    """Next to the database, so one volume holds all of the bot's state."""
    db = Path(settings.database.path)
    return db.with_name(db.name + ".heartbeat")


def health(settings: Settings, *, max_age: float, require_heartbeat: bool) -> tuple[bool, str]:
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db} (has `ltx-bot run` started?)"
    try:
        # Read-only: a health probe must never create, migrate or lock the bot's database.
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"database {db} does not open: {exc}"
    if not require_heartbeat:
        return True, f"database {db} opens"
    beat = heartbeat_path(settings)
    try:
        age = time.time() - beat.stat().st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat at {beat}: `ltx-bot run` is not running"
    if age > max_age:
        return False, f"heartbeat is {age:.0f} s old (limit {max_age:g} s): the bot is stuck or stopped"
    return True, f"ok: database opens, heartbeat {age:.0f} s old"


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def backup(settings: Settings, dest: Path) -> tuple[bool, str]:
    """SQLite's online backup: a consistent copy even while `run` writes (WAL included)."""
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db}"
    if dest.exists():
        return False, f"{dest} exists; choose a new file name"
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                (check,) = target.execute("PRAGMA integrity_check").fetchone()
            finally:
                target.close()
        finally:
            source.close()
        if check != "ok":
            partial.unlink(missing_ok=True)
            return False, f"the copy failed its integrity check: {check}"
        # Renamed only when complete, so DEST is never a half-written database.
        partial.rename(dest)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        return False, f"backup of {db} failed: {exc}"
    return True, f"backed up {db} to {dest} ({dest.stat().st_size} bytes)"


async def _heartbeat(path: Path) -> None:
    # The event loop itself schedules it: a loop that hangs stops the heartbeat too.
    while True:
        try:
            await asyncio.to_thread(_touch, path)
        except OSError as exc:
            log.warning("cannot write heartbeat %s: %s", path, exc.strerror)
        await asyncio.sleep(HEARTBEAT_SECONDS)


# ---------------------------------------------------------------- run and chat


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        if stop.is_set():
            # A second signal means "now": fall back to the default (terminate) action.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        log.info("%s received: stopping (unfinished jobs resume on the next start)",
                 signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, request_stop, signum)


async def run_chat(settings: Settings, user: str | None, stop: asyncio.Event | None = None) -> int:
    from bot.app import App  # the whole core: not for check-config, health or backup

    terminal = load_adapters().terminal
    if terminal is None:
        raise PluginError(f"no terminal adapter is installed (entry points {GROUP})")
    if stop is None:
        stop = asyncio.Event()
        _install_signals(stop)
    # The log into a file under the data directory, only warnings here: no INFO in the chat.
    handlers = chat_handlers(settings)
    if handlers:
        setup_logging(settings, handlers=handlers)
    return await terminal.run(App(settings), user, stop)


async def run_bot(settings: Settings, user: str | None) -> int:
    from bot.app import App

    stop = asyncio.Event()
    _install_signals(stop)
    found = load_adapters()
    platforms = configured_platforms(found, settings)
    for line in plan(settings)[0]:
        if "not started" in line:
            log.warning("%s", line)  # half-configured: say so rather than silently skip it
    beat = heartbeat_path(settings)
    heartbeat = asyncio.create_task(_heartbeat(beat))
    try:
        if not platforms:
            why = _no_credentials(found)
            log.info("%s%s (or not complete): starting the %s.", why[0].upper(), why[1:],
                     found.terminal.describe if found.terminal else "terminal adapter")
            return await run_chat(settings, user, stop)
        await _serve(App(settings), settings, platforms, stop)
        return EXIT_OK
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        with contextlib.suppress(FileNotFoundError):
            beat.unlink()


async def _serve(app: App, settings: Settings, platforms: list[PlatformAdapter],
                 stop: asyncio.Event) -> None:
    """Start the core and every configured platform, wait for `stop`, stop them all."""
    started: list[tuple[str, Service]] = []
    try:
        # The core first: adapters hand commands to the app, and registering their
        # port on a started runner resumes that platform's unfinished jobs.
        await app.start()
        for platform in platforms:
            log.info("Starting the %s adapter.", platform.name)
            started.append((platform.name, await platform.start(app, settings)))
        log.info("ltx-bot is running (%s). Ctrl-C or SIGTERM stops it; unfinished jobs "
                 "resume on the next start.", ", ".join(n for n, _ in started))
        await stop.wait()
        log.info("Stopping: adapters first, then the job runner.")
    finally:
        # Adapters first: stop taking commands, then let the runner persist and close.
        for name, service in reversed(started):
            try:
                await service.close()
            except Exception:
                # Logged with its traceback; the other adapters and the runner must still
                # stop (and persist their jobs), so shutting down goes on.
                log.exception("stopping the %s adapter failed", name)
        await app.stop()


def run_sim(settings: Settings | None, extra: list[str]) -> int:
    from bot.sim import server

    argv: list[str] = []
    if settings is not None:
        b = settings.backend
        # Config values first: flags given on the command line come later and win.
        argv = ["--host", b.sim_host, "--queue-seconds", str(b.sim_queue_seconds),
                "--run-seconds", str(b.sim_run_seconds), "--concurrency", str(b.sim_concurrency)]
        if b.sim_port:  # 0 means "any free port" for the built-in sim; standalone keeps its default
            argv += ["--port", str(b.sim_port)]
    result: int = server.main([*argv, *extra])
    return result


def run_parse(settings: Settings, text: list[str], attach: list[str], out: Any) -> int:
    from bot import preview

    try:
        result = preview.preview(" ".join(text), attach, settings)
    except UserError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    out.write(json.dumps(result, indent=2) + "\n")
    return EXIT_OK


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings, path = load_settings(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"ltx-bot: {exc}\n")
        return EXIT_USAGE
    setup_logging(settings)
    command: str = args.command
    try:
        if command == "check-config":
            return check_config(settings, path, as_json=args.json, out=sys.stdout)
        if command == "health":
            ok, message = health(settings, max_age=args.max_age,
                                 require_heartbeat=not args.no_heartbeat)
            (sys.stdout if ok else sys.stderr).write(message + "\n")
            return EXIT_OK if ok else EXIT_FAILURE
        if command == "backup":
            ok, message = backup(settings, Path(args.dest))
            (sys.stdout if ok else sys.stderr).write(message + "\n")
            return EXIT_OK if ok else EXIT_FAILURE
        if command == "parse":
            return run_parse(settings, args.text, args.attach, sys.stdout)
        if command == "sim":
            return run_sim(settings, extra)
        _, _, problems = plan(settings)
        if problems:
            for problem in problems:
                sys.stderr.write(f"ltx-bot: {problem}\n")
            return EXIT_USAGE
        if command == "chat":
            return asyncio.run(run_chat(settings, args.user))
        if command == "run":
            return asyncio.run(run_bot(settings, args.user))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A start-up failure (database not writable, a platform refusing the token...):
        # one clear line; the traceback only at DEBUG. The formatter scrubs secrets.
        log.error("ltx-bot %s failed: %s: %s", command, type(exc).__name__, exc,
                  exc_info=settings.logging.level == "DEBUG")
        return EXIT_FAILURE
    raise AssertionError(f"unhandled command {command}")


if __name__ == "__main__":
    raise SystemExit(main())

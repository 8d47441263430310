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
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import tomlkit
from pydantic import BaseModel, SecretStr

from bot import heartbeat, maintenance, redaction, usage_export
from bot.config import ConfigError, Settings, load_settings, redacted_dump
from bot.errors import UserError
from bot.logfile import PrivateFileHandler, chat_handlers
from bot.plugins import GROUP, Adapters, PlatformAdapter, PluginError, Service, load_adapters
from bot.private_files import restrict_umask
from bot.redaction import Redactor
from bot.store.sqlite_file import DatabaseFileRefused

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger("ltx-bot")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


# ---------------------------------------------------------------- logging


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret the settings hold (each `SecretStr`, in every section), for scrubbing logs."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.append(value.get_secret_value())
            # A database URL's password may be printed on its own by a driver's error.
            password = urlsplit(value.get_secret_value()).password
            if password:
                found += [password, unquote(password)]
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
        # The configured secrets, and (read at each record) those learned while running,
        # such as fal's CDN upload token; any letter case.
        self._redact = Redactor(secrets)

    # Interaction tokens are per-request secrets no config knows; a platform library may
    # print them inside webhook and callback URLs at DEBUG level.
    _TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        self._redact.update(redaction.learned())
        return self._TOKEN_IN_URL.sub(r"\1<redacted>", self._redact(text))


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


def build_parser(sim_options: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The `ltx-bot` parser; `sim_options` (the simulator's own parser) gives `sim` its options.

    The simulator's parser is built only when `sim` runs: it imports the simulator, which
    `health` (every 30 s in Docker) and the other commands do not need.
    """
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
    # The simulator's options as its own parser defines them (its -h gives way to ours).
    p = sub.add_parser("sim", help="run the fal-compatible simulator standalone",
                       parents=[sim_options] if sim_options else [], conflict_handler="resolve",
                       description="Run the fal-compatible simulator on loopback. --host, "
                       "--queue-seconds, --run-seconds, --concurrency and --port default to the "
                       "config's backend.sim_* settings (--port to 8765 when sim_port is 0).")
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
    p = sub.add_parser("health", help="exit 0 when the database opens and a `run` or `chat` "
                       "process is alive (for HEALTHCHECK)")
    _common(p, top=False)
    p.add_argument("--max-age", type=float, default=heartbeat.MAX_AGE, metavar="SECONDS",
                   help=f"oldest acceptable heartbeat (default {heartbeat.MAX_AGE:g})")
    p.add_argument("--no-heartbeat", action="store_true",
                   help="only check that the database opens (no running bot needed)")
    p.add_argument("--deep", action="store_true",
                   help="also read every page (SQLite quick_check) or table (PostgreSQL)")
    p = sub.add_parser("migrate-store", help="copy a SQLite store into an empty PostgreSQL database")
    _common(p, top=False)
    p.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH",
                   help="the SQLite store to copy (stop the bot first)")
    p.add_argument("--to", dest="target", required=True, metavar="postgresql://...",
                   help="an empty PostgreSQL database at the same schema version")
    usage_export.add_parser(sub, _common)
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


def _sim_argv(argv: list[str]) -> list[str]:
    """The simulator's own arguments: argv without `--config`/`--user` and their values.

    Any prefix argparse took for one of ours (`--conf`) counts: the parse that came first
    refused the ambiguous ones.
    """
    sim: list[str] = []
    skip = False
    for token in argv:
        name = token.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 2 and any(full.startswith(name) for full in ("--config", "--user")):
            skip = "=" not in token
        else:
            sim.append(token)
    return sim


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parse argv; returns (namespace, the simulator's own args for `sim`)."""
    argv = list(argv)
    # Find the command word to treat `parse` and `sim` arguments specially.
    index = next((i for i, a in enumerate(argv) if not a.startswith("-")
                  and (i == 0 or argv[i - 1] not in ("--config", "--user"))), None)
    command = argv[index] if index is not None else None
    if command == "parse":
        assert index is not None
        head, text = _split_parse_argv(argv[index + 1 :])
        args = build_parser().parse_args([*argv[: index + 1], *head])
        args.text = text
        return args, []
    if command == "sim":
        from bot.sim import server

        # Parsed here for `--help` and to refuse a wrong option before anything starts; the
        # simulator gets its arguments as given, after the config's (see run_sim).
        assert index is not None
        args = build_parser(server.build_parser()).parse_args(argv)
        return args, _sim_argv([*argv[:index], *argv[index + 1 :]])
    return build_parser().parse_args(argv), []


# ---------------------------------------------------------------- check-config


def plan(settings: Settings, *, platforms: bool = True) -> tuple[list[str], list[str], list[str]]:
    """What `run` would start: (adapter lines, backend lines, problems that stop it).

    `platforms=False` (for `chat`, which starts none) leaves out the platforms' problems.
    """
    found = load_adapters()
    adapters = [line for p in found.platforms if (line := p.describe(settings)) is not None]
    problems = half_configured(found, settings) if platforms else []
    if not configured_platforms(found, settings):
        if found.terminal is None:
            problems.append(f"no chat platform is configured and no terminal adapter is "
                            f"installed (entry points {GROUP}): reinstall ltx-bot")
        else:
            adapters.append(f"{found.terminal.describe} ({_no_credentials(found)})")
    has_key = settings.backend.has_key
    backend: list[str] = []
    queue_url = redacted_dump(settings)["backend"]["fal_queue_url"]
    if settings.uses_simulator:
        reason = "backend.kind = sim" if settings.backend.kind == "sim" else "no fal key"
        backend.append(
            f"built-in simulator ({reason}): videos are SIMULATED, nothing is spent at fal"
        )
    elif settings.backend.local_server and not has_key:
        backend.append(f"the fal-compatible server at {queue_url} (backend.fal_queue_url is "
                       "on this machine, so no fal key is needed)")
    else:
        if not has_key:
            problems.append("backend.kind = fal but no fal key is set (FAL_KEY or backend.fal_key)")
        backend.append(f"fal queue at {queue_url}" + (" (key set)" if has_key else ""))
    return adapters, backend, problems


def configured_platforms(found: Adapters, settings: Settings) -> list[PlatformAdapter]:
    return [p for p in found.platforms if p.configured(settings)]


def half_configured(found: Adapters, settings: Settings) -> list[str]:
    """A platform with some of its credentials set but not all stops `run`: left out quietly,
    the bot would run without it, or fall back to the terminal chat (which, under Docker or
    systemd, reads the end of its input and exits 0 over and over)."""
    return [f"{p.title} is half-configured: {why}; set what is missing, or remove the {p.title} settings "
            f"to run without {p.title}" for p in found.platforms if (why := p.missing(settings))]


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


async def _chat(settings: Settings, user: str | None) -> int:
    async with heartbeat.beating(settings.data_dir, "chat"):
        return await run_chat(settings, user)


async def run_bot(settings: Settings, user: str | None) -> int:
    from bot.app import App

    stop = asyncio.Event()
    _install_signals(stop)
    found = load_adapters()
    platforms = configured_platforms(found, settings)
    # Its own heartbeat file, removed on the way out; other processes' files stay.
    async with heartbeat.beating(settings.data_dir, "run"):
        if not platforms:
            why = _no_credentials(found)
            log.info("%s%s: starting the %s.", why[0].upper(), why[1:],
                     found.terminal.describe if found.terminal else "terminal adapter")
            return await run_chat(settings, user, stop)
        await _serve(App(settings), settings, platforms, stop)
        return EXIT_OK


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


def _maintain(command: str, settings: Settings, args: argparse.Namespace) -> tuple[bool, str]:
    if command == "health":
        return maintenance.health(settings, max_age=args.max_age,
                                  require_heartbeat=not args.no_heartbeat, deep=args.deep)
    if command == "backup":
        return maintenance.backup(settings, Path(args.dest))
    return maintenance.migrate_store(args.source, args.target)


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever this process creates (database, WAL, logs, videos, backups, scratch) is private.
    restrict_umask()
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
        if command in ("health", "backup", "migrate-store"):
            ok, message = _maintain(command, settings, args)
            (sys.stdout if ok else sys.stderr).write(message + "\n")
            return EXIT_OK if ok else EXIT_FAILURE
        if command == "export-usage":
            return usage_export.run(settings, args, sys.stdout, sys.stderr)
        if command == "parse":
            return run_parse(settings, args.text, args.attach, sys.stdout)
        if command == "sim":
            return run_sim(settings, extra)
        _, _, problems = plan(settings, platforms=command == "run")
        if problems:
            for problem in problems:
                sys.stderr.write(f"ltx-bot: {problem}\n")
            return EXIT_USAGE
        if command == "chat":
            return asyncio.run(_chat(settings, args.user))
        if command == "run":
            return asyncio.run(run_bot(settings, args.user))
    except KeyboardInterrupt:
        return 130
    except DatabaseFileRefused as exc:
        # An empty or damaged database file: what to do, not a traceback or an error id.
        sys.stderr.write(f"ltx-bot: {exc}\n")
        return EXIT_USAGE
    except Exception as exc:
        # A start-up failure (database not writable, a platform refusing the token...):
        # one clear line; the traceback only at DEBUG. The formatter scrubs secrets.
        log.error("ltx-bot %s failed: %s: %s", command, type(exc).__name__, exc,
                  exc_info=settings.logging.level == "DEBUG")
        return EXIT_FAILURE
    raise AssertionError(f"unhandled command {command}")


if __name__ == "__main__":
    raise SystemExit(main())

"""The SQLite file itself: private modes (WAL and SHM too), an empty file refused, a
damaged one refused with one clear message, from the library and from the command line."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ports import User
from bot.store import DatabaseFileRefused, open_sqlite
from tests.console.helpers import run_cli, write_config


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """A common default umask (files 0644, folders 0755): the bot must not rely on a narrow one."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def exists(path: Path) -> bool:
    return path.exists()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_store_and_its_wal_and_shm_are_private(tmp_path: Path, wide_umask: None) -> None:
    db = tmp_path / "new" / "deeper" / "bot.sqlite3"
    store = await open_sqlite(db)
    try:
        await store.ensure_user(User("console", "ann", "ann"))
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert exists(wal) and exists(shm)  # open and written: both are there now
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700
    finally:
        await store.close()
    # Nothing of the build under a temporary name is left beside it.
    assert sorted(p.name for p in db.parent.iterdir()) == ["bot.sqlite3"]


async def test_an_existing_store_with_a_wide_mode_is_narrowed_at_start(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    await (await open_sqlite(db)).close()
    os.chmod(db, 0o644)
    store = await open_sqlite(db)
    await store.close()
    assert mode(db) == 0o600


async def test_an_empty_file_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    db.touch()
    with pytest.raises(DatabaseFileRefused) as refused:
        await open_sqlite(db)
    text = str(refused.value)
    assert f"{db} is empty (0 bytes)" in text
    assert "ltx-bot backup" in text and "delete the empty file" in text
    assert db.stat().st_size == 0 and not exists(Path(f"{db}-wal"))


def damage(db: Path) -> None:
    """Overwrite the middle of a real store of many pages with junk, the way a bad disk or
    a torn copy does; the file header (page 1) stays intact so SQLite still opens it."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO filler (body) VALUES (?)", [("x" * 500,) for _ in range(400)])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = db.stat().st_size
    assert size > 40 * 4096  # many pages
    with db.open("r+b") as fh:
        fh.seek(size // 2 - (size // 2) % 4096)
        fh.write(b"\xa5" * 8192)
    check = sqlite3.connect(db)
    try:
        # quick_check sees it: it lists the damage or fails outright ("malformed").
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            check.execute("PRAGMA quick_check").fetchall()
    finally:
        check.close()


async def test_a_damaged_store_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    await (await open_sqlite(db)).close()
    damage(db)
    with pytest.raises(DatabaseFileRefused) as refused:
        await open_sqlite(db)
    assert f"the database file {db} is damaged" in str(refused.value)
    assert "ltx-bot backup" in str(refused.value)


def test_the_commands_refuse_an_empty_file_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "bot.sqlite3"
    db.touch()
    for args in (["chat", "--user", "ann"], ["health", "--no-heartbeat"],
                 ["backup", str(tmp_path / "copy.sqlite3")],
                 ["migrate-store", "--from", f"sqlite:{db}", "--to", "postgresql://u@127.0.0.1:1/x"]):
        result = run_cli([*args, "--config", str(config)], cwd=tmp_path, stdin="/quota\n")
        assert result.returncode == 2, (args, result.stderr)
        assert f"{db} is empty (0 bytes)" in result.stderr, args
        assert "Traceback" not in result.stderr and "error id" not in result.stdout.lower()
        assert db.stat().st_size == 0
    assert not (tmp_path / "copy.sqlite3").exists()


def test_a_missing_file_still_makes_a_new_store(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "ann"], cwd=tmp_path,
                     stdin="/quota\n")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bot.sqlite3").stat().st_size > 0


async def test_health_deep_finds_damage_that_plain_health_does_not_read(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "bot.sqlite3"
    await (await open_sqlite(db)).close()
    deep = run_cli(["health", "--no-heartbeat", "--deep", "--config", str(config)], cwd=tmp_path)
    assert deep.returncode == 0 and "quick_check ok" in deep.stdout, deep.stderr
    damage(db)
    plain = run_cli(["health", "--no-heartbeat", "--config", str(config)], cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr  # cheap: it only opens the file
    for args in (["health", "--no-heartbeat", "--deep"], ["chat", "--user", "ann"],
                 ["backup", str(tmp_path / "copy.sqlite3")]):
        result = run_cli([*args, "--config", str(config)], cwd=tmp_path, stdin="/quota\n")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if "damaged" in line]
        assert len(lines) == 1 and f"the database file {db} is damaged" in lines[0], result.stderr
        assert "ltx-bot backup" in lines[0]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "copy.sqlite3").exists()

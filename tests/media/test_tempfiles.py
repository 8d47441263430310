"""Temporary files: one root, a locked directory per process, leftovers removed on restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import media
from bot.config import MediaSettings
from tests.guard import with_loopback_guard

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from bot import media
from bot.config import MediaSettings
path = media.work_dir(MediaSettings(tmp_dir=sys.argv[2]))
(path / "partial.mp4").write_bytes(b"x")
print(path, flush=True)
sys.stdin.read()  # hold the directory until the test closes our stdin
"""


def test_work_dir_is_one_per_process_under_the_root(media_settings: MediaSettings) -> None:
    first = media.work_dir(media_settings)
    assert first.parent == Path(media_settings.tmp_dir or "") / "ltx-bot"
    assert media.work_dir(media_settings) == first
    assert first.is_dir()


def test_default_root_is_the_system_temp() -> None:
    import tempfile

    assert media.temp_root(MediaSettings()) == Path(tempfile.gettempdir()) / "ltx-bot"


def test_scratch_dir_is_removed_on_success_and_failure(media_settings: MediaSettings) -> None:
    with media.scratch_dir(media_settings) as ok:
        (ok / "video.mp4").write_bytes(b"data")
    assert not ok.exists()
    with pytest.raises(RuntimeError), media.scratch_dir(media_settings) as failed:
        (failed / "video.mp4").write_bytes(b"data")
        raise RuntimeError("delivery failed")
    assert not failed.exists()
    assert media.work_dir(media_settings).exists()


def test_cleanup_removes_leftovers_of_dead_processes_only(media_settings: MediaSettings) -> None:
    root = media.temp_root(media_settings)
    mine = media.work_dir(media_settings)
    (mine / "in-use.png").write_bytes(b"x")
    dead = root / "p999999-deadbeef"
    dead.mkdir()
    (dead / ".lock").write_bytes(b"")  # nobody holds its lock: the owner is gone
    (dead / "half.mp4").write_bytes(b"x")
    old_file = root / "stray.tmp"
    old_file.write_bytes(b"x")
    long_ago = time.time() - 10 * 24 * 3600
    os.utime(old_file, (long_ago, long_ago))
    new_file = root / "fresh.tmp"  # newer than this process: maybe someone else's, keep it
    new_file.write_bytes(b"x")

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(media_settings.tmp_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=with_loopback_guard(os.environ))
    assert child.stdout is not None and child.stdin is not None
    live = Path(child.stdout.readline().strip())
    try:
        assert media.cleanup_stale(media_settings) == 2
        assert not dead.exists() and not old_file.exists()
        assert new_file.exists() and (mine / "in-use.png").exists()
        assert (live / "partial.mp4").exists()  # another live process's work is left alone
    finally:
        child.stdin.close()
        assert child.wait() == 0
    # Its owner has exited: now it is a leftover.
    assert media.cleanup_stale(media_settings) == 1
    assert not live.exists() and mine.exists()


def test_cleanup_without_a_root_is_a_no_op(tmp_path: Path) -> None:
    assert media.cleanup_stale(MediaSettings(tmp_dir=str(tmp_path / "never-made"))) == 0

"""What each make target installs into a fresh venv (dry runs: nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str, tmp_path: Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed: the README's two commands need it")
    venv = tmp_path / ".venv"  # absent, as on a fresh clone
    result = subprocess.run([make, "-n", "-C", str(ROOT), f"VENV={venv}", target],
                            capture_output=True, text=True, check=True)
    return result.stdout


def installs(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_the_runtime_only(tmp_path: Path) -> None:
    plan = dry_run("run", tmp_path)
    assert installs(plan) and all("[" not in line for line in installs(plan)), plan
    assert "ltx-bot run" in plan


def test_make_test_adds_the_test_tools_but_not_the_benchmark_references(tmp_path: Path) -> None:
    lines = installs(dry_run("test", tmp_path))
    assert any("[test]" in line for line in lines), lines
    assert not any("bench" in line for line in lines), lines


def test_make_bench_installs_the_benchmark_references(tmp_path: Path) -> None:
    lines = installs(dry_run("bench", tmp_path))
    assert any("[bench]" in line for line in lines), lines

"""The loopback-only guard for child processes the tests start.

`tests/conftest.py` guards the test process itself; a child Python process loads
`tests/loopback_guard/sitecustomize.py` when that folder is first on PYTHONPATH,
so it too can reach nothing beyond loopback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

LOOPBACK_GUARD = Path(__file__).resolve().parent / "loopback_guard"


def with_loopback_guard(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the loopback guard first on PYTHONPATH: a child can reach nothing else."""
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(LOOPBACK_GUARD)]
    return {**env, "PYTHONPATH": os.pathsep.join([str(LOOPBACK_GUARD), *rest])}

"""How the simulator behaves: timings, concurrency, and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimOptions:
    """The simulator's knobs (tests change some while it runs, so not frozen)."""

    queue_seconds: float = 0.0  # least time a job waits IN_QUEUE (cold start)
    run_seconds: float = 0.5  # time a job spends IN_PROGRESS (rendering overlaps it)
    concurrency: int = 2  # jobs IN_PROGRESS at once; the rest wait with positions
    fail_rate: float = 0.0  # share of answers that are 429/503
    drop_stream_rate: float = 0.0  # share of status streams cut mid-job
    error_rate: float = 0.0  # share of requests ending COMPLETED with error + error_type
    scale: float = 0.25  # rendered size vs requested; fps and frame count are exact
    seed: int = 0
    keepalive_seconds: float = 15.0
    result_ttl_seconds: float = 3600.0
    steps: int = 10  # progress log lines per job
    token_ttl_seconds: float = 3600.0
    api_key: str | None = None  # when set, queue and token calls need `Key <api_key>`
    render_workers: int = 2  # threads that encode videos (more only adds GIL contention)
    # Where requests and files are kept across restarts (None: in memory and a temporary
    # directory, gone when the simulator stops).
    state_dir: Path | None = None
    file_ttl_seconds: float = 7 * 24 * 3600.0  # stored files, in a state directory

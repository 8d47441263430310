"""Jobs: one generation from admission to the delivered video, and back after a restart.

Every state change is written to the store *before* the action it leads to, so
a restart finds each job at a step it can safely repeat or resume:

    accepted -> waiting -> submitted -> in_queue -> running -> delivering -> done
                                                         \\-> failed | cancelled

- `runner`: the `JobRunner` facade (start: register, adopt and resume; stop: release; start_job, cancel, wait);
- `driver`: one job's state machine (`JobDriver`), the only writer of its state;
- `delivery`: download -> fit -> poster -> settle -> claim -> send;
- `admission`: the local line for a free slot at fal;
- `cards`: pure functions from a job to its `StatusCard`, and the texts of endings;
- `runtime`: what the runner and the drivers share.
"""

from bot.jobs.admission import Admission
from bot.jobs.cards import (
    ERROR_WORDS,
    EXPIRED_TEXT,
    INPUTS_LOST_TEXT,
    REFUNDED,
    TIMEOUT_TEXT,
    plain_failure,
    status_card,
    summary_card,
)
from bot.jobs.delivery import MAX_RESULT_BYTES
from bot.jobs.driver import JobDriver
from bot.jobs.runner import JobRunner
from bot.jobs.runtime import RunnerHooks

__all__ = [
    "ERROR_WORDS",
    "EXPIRED_TEXT",
    "INPUTS_LOST_TEXT",
    "MAX_RESULT_BYTES",
    "REFUNDED",
    "TIMEOUT_TEXT",
    "Admission",
    "JobDriver",
    "JobRunner",
    "RunnerHooks",
    "plain_failure",
    "status_card",
    "summary_card",
]

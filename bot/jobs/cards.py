"""What a job looks like to its user: pure functions from a job to a StatusCard, and the
texts of its endings. No I/O here, so every card is tested by looking at it.

Live facts (stage, place in line, place in fal's queue, progress, elapsed time, ETA)
go into the card's fields only, narrative into its lines only: each renderer shows
each fact once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot import media
from bot.catalog import UnknownModel, VideoOutput, by_endpoint_id
from bot.errors import FalError
from bot.model import JobRecord, JobState, MediaInfo
from bot.ports import Action, ActionKind, StatusCard, Tone, format_duration
from bot.quota import QuotaStatus

REFUNDED = "Your credits were refunded."
EXPIRED_TEXT = (
    "The result expired at fal before it could be delivered; your credits were refunded."
)
INPUTS_LOST_TEXT = (
    "The bot restarted before your attachments were sent to fal, and they are gone now. "
    "Your credits were refunded; please run the command again."
)
TIMEOUT_TEXT = "The generation took longer than the bot waits ({hours:g} h) and was stopped. Your credits were refunded."
UNREACHABLE_FAILED_TEXT = (
    "fal could not be reached for {minutes:g} minutes, so the job was stopped. "
    "Your credits were refunded.")
CANCEL_LATER_TEXT = ("fal cannot be reached right now: the bot cancels the job there as soon "
                     "as fal answers again.")
BAD_RESULT_TEXT = f"fal sent a result the bot could not read. {REFUNDED}"
NOT_POSTED_TEXT = "The video may not have been posted; download it with the link."
POST_FAILED_TEXT = "The video could not be posted here. Download it with the link. "
DOWNLOAD_HINT = "Download it from fal with the link; fal keeps it for about an hour."

# fal's error_type values in plain words (PLATFORM-NOTES, fal's docs).
ERROR_WORDS: dict[str, str] = {
    "request_timeout": "The generation took longer than fal allows and was stopped.",
    "startup_timeout": "fal could not start the model in time.",
    "runner_scheduling_failure": "fal could not find a machine to run the model right now.",
    "runner_disconnected": "fal lost the machine that was running the generation.",
    "runner_server_error": "The model crashed on fal's side.",
    "internal_server_error": "fal had an internal error.",
    "client_disconnected": "fal lost the connection to the request.",
    "content_policy_violation": "fal's safety checker refused the prompt or an input image.",
    "safety_checker": "fal's safety checker refused the prompt or an input image.",
    "nsfw_content_detected": "fal's safety checker flagged the result.",
    "file_download_error": "fal could not download one of the inputs.",
    "image_load_error": "fal could not read one of the input images.",
    "video_load_error": "fal could not read the input video.",
    "validation_error": "fal did not accept the input.",
    "out_of_memory": "The model ran out of memory on fal; try a shorter or smaller video.",
}

STAGES: dict[JobState, str] = {
    JobState.ACCEPTED: "Preparing",
    JobState.WAITING: "Waiting for a free slot",
    JobState.SUBMITTED: "Sending to fal",
    JobState.IN_QUEUE: "In fal's queue",
    JobState.RUNNING: "Generating",
    JobState.DELIVERING: "Uploading the video",
    JobState.DONE: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELLED: "Cancelled",
}
TONES: dict[JobState, Tone] = {
    JobState.DONE: "success", JobState.FAILED: "error", JobState.CANCELLED: "warning",
}
RESULT_ACTIONS: tuple[tuple[ActionKind, str], ...] = (
    ("reroll", "Re-roll"), ("extend", "Extend"), ("retake", "Retake"), ("continue", "Continue"),
    ("delete", "Delete"), ("report", "Report"))
# Early progress readings are noise; a typical run time is a better guess then.
MIN_PROGRESS_FOR_ETA = 0.05


def plain_failure(error_type: str | None) -> str:
    """What a user reads when fal reports a failed request."""
    if error_type and error_type in ERROR_WORDS:
        words = ERROR_WORDS[error_type]
    elif error_type:
        words = f"fal could not finish the generation ({error_type.replace('_', ' ')})."
    else:
        words = "fal could not finish the generation."
    return f"{words} {REFUNDED}"


def fal_trouble(exc: FalError) -> str:
    """What a user reads when fal itself failed (not the request): busy, or a refusal."""
    if exc.upstream_fault or exc.status is None:
        return (f"fal is having trouble right now ({exc.status or 'no answer'}); "
                f"please try again later. {REFUNDED}")
    return f"fal refused the request (HTTP {exc.status}). {REFUNDED}"


def upload_failed(exc: FalError) -> str:
    return f"Your attachment could not be sent to fal ({exc.status or 'no answer'}). {REFUNDED}"


def state_words(state: JobState) -> str:
    """`done`, `in queue`: a state inside a sentence."""
    return state.value.replace("_", " ")


def quota_words(status: QuotaStatus | None, extra: int = 0) -> str:
    """The quota line of a summary; `extra` is what settling cost beyond the estimate."""
    if status is None:
        return ""
    if status.exempt:
        return f"{status.daily_used + extra} credits used today"
    return f"{max(0, status.daily_left - extra)} of {status.daily_limit} credits left today"


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_title(endpoint_id: str) -> str:
    try:
        return by_endpoint_id(endpoint_id).title
    except UnknownModel:
        return endpoint_id


# ---------------------------------------------------------------- the status card


def status_card(
    job: JobRecord, *, at: datetime, typical_seconds: float | None = None,
    cancelled_by: str | None = None, notice: str | None = None,
) -> StatusCard:
    """The job's one status message, as of `at`. `typical_seconds` (how long a run of this
    endpoint usually takes) gives an ETA before fal reports progress. `notice` (fal is
    unreachable, generation is paused) stands in for the stage while it lasts."""
    state = job.state
    live = not state.final
    return StatusCard(
        title=f"Job #{job.id} · {model_title(job.endpoint_id)}",
        lines=_narrative(job, at, cancelled_by),
        job_id=job.id,
        state=state.value,
        stage=(notice or STAGES[state]) if live else None,
        progress=job.progress if state in (JobState.RUNNING, JobState.DELIVERING) else None,
        local_position=job.local_position if state is JobState.WAITING else None,
        fal_position=_fal_position(job),
        elapsed_since=aware(job.created_at) if live else None,
        eta=estimate_eta(job, at, typical_seconds) if state is JobState.RUNNING else None,
        actions=[Action(kind="cancel", job_id=job.id, label="Cancel")]
        if live and state is not JobState.DELIVERING else [],
        tone=TONES.get(state, "info"),
        final=state.final,
        link=job.result_url if state is JobState.DONE and job.error_message else None,
    )


def _fal_position(job: JobRecord) -> int | None:
    # fal counts the requests ahead (0 = next); people count from 1.
    if job.state is not JobState.IN_QUEUE or job.queue_position is None:
        return None
    return job.queue_position + 1


def _narrative(job: JobRecord, at: datetime, cancelled_by: str | None) -> list[str]:
    lines = [f"“{short(job.prompt)}”"] if job.prompt else []
    if job.state is JobState.DONE:
        took = (aware(job.finished_at) if job.finished_at else at) - aware(job.created_at)
        cost = f" · {job.settled_credits} credits" if job.settled_credits is not None else ""
        lines.append(f"Done in {format_duration(took.total_seconds())}{cost}")
        if job.error_message:
            lines.append(job.error_message)
    elif job.state is JobState.FAILED:
        lines.append(job.error_message or f"The job failed. {REFUNDED}")
    elif job.state is JobState.CANCELLED:
        who = f" by {cancelled_by}" if cancelled_by else ""
        lines.append(f"Cancelled{who}. {REFUNDED}")
        if job.error_message:
            lines.append(job.error_message)
    return lines


def estimate_eta(job: JobRecord, at: datetime, typical_seconds: float | None) -> datetime | None:
    """When a running job should finish: from fal's progress, else from a typical run."""
    if job.started_at is None:
        return None
    started = aware(job.started_at)
    elapsed = max(0.0, (at - started).total_seconds())
    progress = job.progress
    if progress is not None and progress >= MIN_PROGRESS_FOR_ETA and elapsed > 0:
        return at + timedelta(seconds=elapsed * (1 - progress) / progress)
    if typical_seconds is not None:
        return max(at, started + timedelta(seconds=typical_seconds))
    return None


# ---------------------------------------------------------------- the delivered video


def summary_card(
    job: JobRecord, output: VideoOutput | None, info: MediaInfo | None, quota_text: str
) -> StatusCard:
    """The card that goes with the finished video: what it is, what it cost, what next."""
    lines: list[str] = []
    if job.prompt:
        lines.append(f"“{short(job.prompt, 200)}”")
    facts: list[str] = []
    if output is not None and output.seed is not None:
        facts.append(f"seed {output.seed}")
    if info is not None:
        if info.duration:
            facts.append(f"{info.duration:.1f} s")
        facts.append(f"{info.width}×{info.height}")
        facts.append(media.format_size(info.size_bytes))
    if facts:
        lines.append(" · ".join(facts))
    if job.settled_credits is not None:
        lines.append(f"Cost: {job.settled_credits} credits · {quota_text}")
    elif quota_text:
        lines.append(quota_text)
    return StatusCard(
        title=model_title(job.endpoint_id),
        lines=lines,
        job_id=job.id,
        state=JobState.DONE.value,
        actions=[Action(kind=kind, job_id=job.id, label=label) for kind, label in RESULT_ACTIONS],
        tone="success",
        final=True,
    )


def poster_card(summary: StatusCard, reason: str, link: str) -> StatusCard:
    """The summary for a poster frame sent instead of a video that could not be posted."""
    return replace(summary, lines=[*summary.lines, reason, DOWNLOAD_HINT], link=link,
                   tone="warning")

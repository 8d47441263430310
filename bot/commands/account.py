"""A user's own affairs: what quota is left, their recent jobs, cancelling one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import catalog
from bot.commands.services import Handler, Services, job_id_of
from bot.model import JobRecord, JobState
from bot.ports import ChatPort, Invocation


async def quota(svc: Services, inv: Invocation, port: ChatPort) -> str:
    status = await svc.quota.status(inv.user, inv.place, workspace_word=port.traits.workspace_word)
    return status.text()


async def jobs(svc: Services, inv: Invocation, port: ChatPort) -> str:
    records = await svc.store.list_jobs(inv.user.key, limit=10)
    if not records:
        return "You have no jobs yet. Try: video a paper boat on a stormy sea"
    now = datetime.now(UTC)
    return "\n".join(["Your recent jobs:", *(_job_line(job, now) for job in records)])


async def cancel(svc: Services, inv: Invocation, port: ChatPort) -> str:
    job = await svc.runner.cancel(job_id_of(inv), inv.user)
    # A cancel during a fal outage says what is still to happen at fal.
    note = f" {job.error_message}" if job.error_message else ""
    return (f"Cancelled job #{job.id}; its {job.estimate_credits} reserved credits were "
            f"refunded.{note}")


HANDLERS: dict[str, Handler] = {"quota": quota, "jobs": jobs, "cancel": cancel}


def _job_line(job: JobRecord, now: datetime) -> str:
    if job.state in (JobState.CANCELLED, JobState.FAILED):
        cost = "refunded"
    else:
        credits = job.settled_credits if job.settled_credits is not None else job.estimate_credits
        cost = f"{credits} credits"
    prompt = job.prompt if len(job.prompt) <= 50 else job.prompt[:47] + "..."
    return (f"#{job.id} {job.state.value} · {_endpoint_key(job.endpoint_id)} · {cost} · "
            f"{_ago(now - job.created_at)} · {prompt}{_result_where(job)}")


def _result_where(job: JobRecord) -> str:
    """Where the video is: the file a surface saved it to (a result link would die with
    a local simulator), else fal's link; or that its owner deleted it."""
    if job.state is not JobState.DONE:
        return ""
    ref = job.result_message
    if ref is not None and ref.deleted:
        return " · video deleted"
    if ref is not None and ref.saved_path:
        return f" {ref.saved_path}"
    return f" {job.result_url}" if job.result_url else ""


def _endpoint_key(endpoint_id: str) -> str:
    try:
        return catalog.by_endpoint_id(endpoint_id).key
    except catalog.UnknownModel:
        return endpoint_id  # a job from an endpoint this version no longer lists


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"

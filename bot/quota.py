"""Quota policy: who may start a job now, what it reserves, and what it finally costs.

Credits are integers (`quota.credits_per_usd`, 1 credit = 1 cent by default).

Windows: the daily window starts 00:00 UTC, the monthly one on the 1st at
00:00 UTC. A job counts against the windows of the moment it was admitted,
also when it is settled or refunded later.

Limits, checked in one transaction with the reservation (so concurrent
admissions can never overshoot together):

- per user: daily and monthly credits, unfinished jobs at once, cooldown
  between two job starts. A tier (matched by role or `platform:id`, or set by
  an admin with `set_tier`, which wins) overrides these; the highest
  `priority` wins among matches.
- per workspace (a server or team) monthly credits, and the whole bot's
  daily credits; 0 means no limit. These protect the operator's money, so
  they apply to admins too.
- admins (`User.is_admin`) are exempt from the per-user limits; blocked
  users are refused.

Granted credits (`grant`) are a separate balance that does not expire: a job
first uses the user's daily/monthly allowance and only the part that does
not fit there is drawn from the granted credits. That is what a user expects
from "you got 100 extra credits": they are there until spent, they don't
vanish at midnight, and they are not used while the free allowance lasts.

Settlement: `settle` replaces the reservation by the real cost. A cheaper
job gives credits back (granted credits first, since they were used last);
a dearer one charges the extra to the allowance even past its limit, because
the money was really spent; the next admission then sees less left.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot import catalog
from bot.config import QuotaSettings, Settings, TierSettings
from bot.errors import PermissionDenied, QuotaExceeded, UsageError, UserError
from bot.model import GenerationRequest, JobRecord, ParentKind
from bot.ports import InteractionInfo, MessageRef, Place, User
from bot.store import (
    LedgerEntry,
    LedgerTx,
    NewJob,
    Store,
    UsageRow,
    UsageSnapshot,
    UserRow,
    utc_now,
    workspace_key_of,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# A user's granted balance stays far inside SQLite's 64-bit integers: past 2**63 a sum turns
# into a float, and every later total and audit of that user would be wrong.
MAX_GRANTED_BALANCE = 10**15

__all__ = ["BLOCKED", "Floor", "Limits", "Quota", "QuotaStatus", "UsageRow", "format_wait"]


# ---------------------------------------------------------------- time words


def day_start(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


def next_day(at: datetime) -> datetime:
    return day_start(at) + timedelta(days=1)


def next_month(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    if at.month == 12:
        return datetime(at.year + 1, 1, 1, tzinfo=UTC)
    return datetime(at.year, at.month + 1, 1, tzinfo=UTC)


def format_wait(seconds: float) -> str:
    """A duration the way people say it: "7 s", "12 min", "5 h 12 min", "3 days 4 h"."""
    if seconds < 60:
        # Rounded up so that waiting this long is always enough.
        return f"{max(1, math.ceil(seconds))} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {hours} h" if hours else f"{days} {unit}"


def _month_day(at: datetime) -> str:
    return f"{at.day} {at.strftime('%B')}"


def _jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class Limits:
    """One user's limits after tiers; `exempt` (admins) lifts the per-user ones."""

    daily_credits: int
    monthly_credits: int
    max_concurrent_jobs: int
    cooldown_seconds: float
    tier: str | None = None
    exempt: bool = False


@dataclass(frozen=True)
class QuotaStatus:
    """What a user has used and has left, at `now`; `text()` words it for the quota command."""

    daily_used: int
    daily_limit: int
    daily_left: int
    monthly_used: int
    monthly_limit: int
    monthly_left: int
    daily_resets_at: datetime
    monthly_resets_at: datetime
    running_jobs: int
    max_concurrent_jobs: int
    tier: str | None
    exempt: bool
    now: datetime
    granted_credits: int = 0
    workspace_used: int | None = None  # None: no workspace budget here
    workspace_limit: int | None = None
    global_used: int | None = None  # None: no global budget
    global_limit: int | None = None
    workspace_word: str = "workspace"
    typical: list[tuple[str, int]] = field(default_factory=list)

    def text(self) -> str:
        day_wait = format_wait((self.daily_resets_at - self.now).total_seconds())
        month_wait = format_wait((self.monthly_resets_at - self.now).total_seconds())
        lines: list[str] = []
        if self.exempt:
            lines.append("You are an admin: your own quotas do not apply to you.")
            lines.append(f"Today: {self.daily_used} credits used. This month: {self.monthly_used} credits used.")
            lines.append(f"Jobs running: {self.running_jobs}.")
        else:
            lines.append(
                f"Today: {self.daily_used} of {self.daily_limit} credits used, "
                f"{self.daily_left} left (resets in {day_wait})."
            )
            lines.append(
                f"This month: {self.monthly_used} of {self.monthly_limit} credits used, "
                f"{self.monthly_left} left (resets in {month_wait})."
            )
            if self.granted_credits:
                lines.append(f"Granted credits: {self.granted_credits} (used after your daily or monthly allowance; they do not expire).")
            lines.append(f"Jobs running: {self.running_jobs} of {self.max_concurrent_jobs}.")
            if self.tier:
                lines.append(f"Tier: {self.tier}.")
        if self.workspace_limit is not None and self.workspace_used is not None:
            lines.append(
                f"This {self.workspace_word}: {self.workspace_used} of {self.workspace_limit} "
                f"credits used this month."
            )
        if self.global_limit is not None and self.global_used is not None:
            lines.append(f"The whole bot: {self.global_used} of {self.global_limit} credits used today.")
        if self.typical:
            (first_label, first_cost), *rest = self.typical
            parts = [f"{first_label} ≈ {first_cost} credits"]
            parts += [f"{label} {cost}" for label, cost in rest]
            lines.append("A typical job costs: " + ", ".join(parts) + ".")
        return "\n".join(lines)


# ---------------------------------------------------------------- policy


BLOCKED = ("You are blocked from starting jobs with this bot. "
           "Ask an admin if you think this is a mistake.")


@dataclass(frozen=True)
class Floor:
    """The least a command can cost before its attachments are seen (`bot.floor`);
    `exact` when every reading of them costs the same."""

    credits: int
    exact: bool


class Quota:
    """The quota policy over a `Store`: admits jobs (reserving their estimate), settles
    or refunds them, grants credits and reports what is left. See the module docstring."""

    def __init__(self, store: Store, settings: Settings, *, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or utc_now

    @property
    def _q(self) -> QuotaSettings:
        return self.settings.quota

    # -- policy pieces

    def limits_for(self, user: User, row: UserRow | None = None) -> Limits:
        """The per-user limits after tiers; an admin-set tier beats config matches."""
        q = self._q
        chosen: tuple[str, TierSettings] | None = None
        if row is not None and row.tier and row.tier in q.tiers:
            chosen = (row.tier, q.tiers[row.tier])
        else:
            roles = set(user.roles)
            matches = [
                (name, tier) for name, tier in q.tiers.items()
                if user.key in tier.users or roles.intersection(tier.roles)
            ]
            if matches:
                # Highest priority wins; the name breaks ties so the choice is stable.
                chosen = max(matches, key=lambda m: (m[1].priority, m[0]))
        limits = Limits(q.daily_credits, q.monthly_credits, q.max_concurrent_jobs,
                        q.cooldown_seconds, exempt=user.is_admin)
        if chosen is None:
            return limits
        name, tier = chosen
        return Limits(
            daily_credits=q.daily_credits if tier.daily_credits is None else tier.daily_credits,
            monthly_credits=q.monthly_credits if tier.monthly_credits is None else tier.monthly_credits,
            max_concurrent_jobs=(q.max_concurrent_jobs if tier.max_concurrent_jobs is None
                                 else tier.max_concurrent_jobs),
            cooldown_seconds=(q.cooldown_seconds if tier.cooldown_seconds is None
                              else tier.cooldown_seconds),
            tier=name,
            exempt=user.is_admin,
        )

    def check(self, user: User, place: Place, limits: Limits, usage: UsageSnapshot,
              cost: int, now: datetime, *, workspace_word: str = "workspace",
              at_least: bool = False) -> int:
        """Raise QuotaExceeded naming the first limit `cost` breaks; else return the
        part of `cost` drawn from granted credits. Money limits come first: telling
        someone to wait 7 s when their day is spent would only waste their time.
        `workspace_word` is what the user's platform calls a workspace ("server");
        `at_least`: `cost` is the least the job can cost, and refusals say so."""
        costs = f"costs at least {cost}" if at_least else f"costs {cost}"
        bonus = 0
        if not limits.exempt:
            daily_left = limits.daily_credits - usage.day_regular
            monthly_left = limits.monthly_credits - usage.month_regular
            free = max(0, min(daily_left, monthly_left))
            bonus = max(0, cost - free)
            if bonus > usage.bonus_balance:
                raise QuotaExceeded(self._credits_refusal(limits, usage, cost, now,
                                                          daily_left, monthly_left, costs))
        workspace_key = workspace_key_of(place)
        ws_limit = self._q.workspace_monthly_credits
        if ws_limit and workspace_key and usage.workspace_month_credits + cost > ws_limit:
            left = max(0, ws_limit - usage.workspace_month_credits)
            reset = next_month(now)
            raise QuotaExceeded(
                f"This job {costs} credits but this {workspace_word} has {left} of its "
                f"{ws_limit} monthly credits left. The {workspace_word}'s budget resets in "
                f"{format_wait((reset - now).total_seconds())} ({_month_day(reset)}, 00:00 UTC)."
            )
        global_limit = self._q.global_daily_credits
        if global_limit and usage.global_day_credits + cost > global_limit:
            left = max(0, global_limit - usage.global_day_credits)
            reset = next_day(now)
            raise QuotaExceeded(
                f"This job {costs} credits but the bot has {left} of its {global_limit} "
                f"daily credits left for everyone. It resets in "
                f"{format_wait((reset - now).total_seconds())} (00:00 UTC)."
            )
        if limits.exempt:
            return 0
        if usage.running_jobs >= limits.max_concurrent_jobs:
            raise QuotaExceeded(
                f"You already have {_jobs(usage.running_jobs)} running (your limit is "
                f"{limits.max_concurrent_jobs}). Wait for one to finish or cancel one with /cancel.",
                limit="concurrent",
            )
        if usage.last_job_at is not None and limits.cooldown_seconds > 0:
            wait = limits.cooldown_seconds - (now - usage.last_job_at).total_seconds()
            if wait > 0:
                raise QuotaExceeded(f"Please wait {format_wait(wait)} before starting another job.",
                                    limit="cooldown", retry_after=wait)
        return bonus

    def _credits_refusal(self, limits: Limits, usage: UsageSnapshot, cost: int, now: datetime,
                         daily_left: int, monthly_left: int, costs: str) -> str:
        # The binding window is the one with less left; on a tie the monthly one,
        # because waiting for midnight would not help.
        monthly = monthly_left <= daily_left
        window, limit, left = (("monthly", limits.monthly_credits, monthly_left) if monthly
                               else ("daily", limits.daily_credits, daily_left))
        granted = (f" and {usage.bonus_balance} granted credits" if usage.bonus_balance else "")
        if cost > min(limits.daily_credits, limits.monthly_credits) + usage.bonus_balance:
            whole = min(limits.daily_credits, limits.monthly_credits)
            return (
                f"This job {costs} credits, more than your whole {window} quota of "
                f"{whole} credits{granted}. Try a shorter or smaller video, or ask an admin for more credits."
            )
        reset = next_month(now) if monthly else next_day(now)
        when = f"{_month_day(reset)}, 00:00 UTC" if monthly else "00:00 UTC"
        return (
            f"This job {costs} credits but you have {max(0, left)} of your {limit} "
            f"{window} credits left{granted}. Your {window} quota resets in "
            f"{format_wait((reset - now).total_seconds())} ({when})."
        )

    def shared_limits(self) -> list[str]:
        """The usage rows shared between users that a configured limit reads: on
        PostgreSQL an admission locks only these (and its own user's)."""
        return [scope for scope, limit in (("ws_month", self._q.workspace_monthly_credits),
                                           ("global_day", self._q.global_daily_credits))
                if limit]

    def reservation_checks(self, tx: LedgerTx, user: User, row: UserRow | None, place: Place,
                           cost: int, now: datetime, *, workspace_word: str,
                           already_running: bool = False) -> int:
        """What a reservation meets in its own transaction: blocked, then every limit of
        `check`; returns the granted credits it takes. `already_running`: the job is among
        the user's unfinished ones already and started long ago (no cooldown): a job
        reserving again after a fal-account pause (`bot.quota_pause`)."""
        if row is not None and row.blocked and not user.is_admin:
            raise PermissionDenied(BLOCKED)
        usage = tx.usage(user.key, workspace_key_of(place), now, limited=self.shared_limits())
        if already_running:
            usage = replace(usage, running_jobs=max(0, usage.running_jobs - 1), last_job_at=None)
        return self.check(user, place, self.limits_for(user, row), usage, cost, now,
                          workspace_word=workspace_word)

    # -- the contract

    async def precheck(self, user: User, place: Place, floor: Floor | None, *,
                       workspace_word: str = "workspace") -> None:
        """The refusals that need no media, before anything is downloaded or decoded:
        blocked, then every limit of `check` for the least the command can cost (`floor`;
        None: only the limits that do not depend on the cost). Reads only: `admit` checks
        everything again, with the real estimate, in the transaction that reserves it."""
        now = self.clock()
        workspace_key = workspace_key_of(place)
        row, usage = await self.store.run(
            lambda tx: (tx.get_user(user.key), tx.usage(user.key, workspace_key, now)), write=False)
        if row is not None and row.blocked and not user.is_admin:
            raise PermissionDenied(BLOCKED)
        cost = floor.credits if floor is not None else 0
        self.check(user, place, self.limits_for(user, row), usage, cost, now,
                   workspace_word=workspace_word, at_least=floor is not None and not floor.exact)

    async def admit(self, user: User, place: Place, request: GenerationRequest, *,
                    parent_id: int | None = None, parent_kind: ParentKind | str | None = None,
                    status_message: MessageRef | None = None,
                    interaction: InteractionInfo | None = None,
                    workspace_word: str = "workspace") -> JobRecord:
        """Check every limit, reserve the estimate and create the job (state ACCEPTED),
        all in one transaction. Raises QuotaExceeded or PermissionDenied; its text calls
        the place's workspace `workspace_word` (the port's `traits.workspace_word`)."""
        now = self.clock()
        cost = request.estimate.credits
        workspace_key = workspace_key_of(place)
        kind: ParentKind | None = None
        if parent_kind is not None:
            if parent_kind not in ("reroll", "extend", "continue"):
                raise ValueError(f"unknown parent kind {parent_kind!r}")
            kind = parent_kind  # type: ignore[assignment]
        def body(tx: LedgerTx) -> JobRecord:
            row = tx.upsert_user(user, now)
            bonus = self.reservation_checks(tx, user, row, place, cost, now,
                                            workspace_word=workspace_word)
            job = tx.insert_job(NewJob(
                owner=user, place=place, endpoint_id=request.endpoint.endpoint_id,
                input=request.input, prompt=request.prompt, estimate_credits=cost,
                estimate_usd=request.estimate.usd, created_at=now, parent_id=parent_id,
                parent_kind=kind, status_message=status_message,
                interaction_token=interaction.token if interaction else None,
                interaction_expires_at=interaction.expires_at if interaction else None,
            ))
            tx.record(LedgerEntry(
                kind="reserve", credits=cost, bonus=bonus, usd=request.estimate.usd,
                user_key=user.key, workspace_key=workspace_key, job_id=job.id,
                charged_at=now, note=request.endpoint.key,
            ), now)
            return job

        return await self.store.run(body)

    async def settle(self, job_id: int, usd: float) -> int:
        """Charge the real cost instead of the estimate. Returns the credits the job costs.
        A second call changes nothing; after a refund it charges nothing (returns 0)."""
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"a cost must be a finite amount >= 0, got {usd!r}")
        now = self.clock()
        real = catalog.usd_to_credits(usd, self._q.credits_per_usd)
        def body(tx: LedgerTx) -> int:
            charge = tx.charge_of(job_id)
            if charge is None:
                raise LookupError(f"job {job_id} not found")
            if charge.final == "settle":
                return charge.charged
            if charge.final == "refund":
                log.warning("job %s: settle after refund ignored", job_id)
                return 0
            delta = real - charge.reserved
            # Cheaper than estimated: give back granted credits first (they were used last).
            bonus = -min(-delta, charge.reserved_bonus) if delta < 0 else 0
            tx.record(LedgerEntry(
                kind="settle", credits=delta, bonus=bonus, usd=usd - charge.reserved_usd,
                user_key=charge.owner_key, workspace_key=charge.workspace_key,
                job_id=job_id, charged_at=charge.created_at,
                note=f"real {real} credits vs estimate {charge.reserved}",
                reservation=charge.reservation,
            ), now)
            tx.set_job(job_id, settled_credits=real, settled_usd=usd)
            return real

        return await self.store.run(body)

    async def refund(self, job_id: int) -> None:
        """Give back the whole reservation. Does nothing a second time, after settle, or
        for a job whose reservation a pause gave back already (`bot.quota_pause`)."""
        now = self.clock()
        def body(tx: LedgerTx) -> None:
            charge = tx.charge_of(job_id)
            if charge is None:
                raise LookupError(f"job {job_id} not found")
            if charge.final == "refund":
                # Given back by a pause already (or refunded before): it ends costing nothing.
                tx.set_job(job_id, settled_credits=0, settled_usd=0.0)
            if charge.final is not None:
                return
            tx.record(LedgerEntry(
                kind="refund", credits=-charge.reserved, bonus=-charge.reserved_bonus,
                usd=-charge.reserved_usd, user_key=charge.owner_key,
                workspace_key=charge.workspace_key, job_id=job_id,
                charged_at=charge.created_at, reservation=charge.reservation,
            ), now)
            tx.set_job(job_id, settled_credits=0, settled_usd=0.0)

        await self.store.run(body)

    async def grant(self, user_key: str, credits: int, by: str) -> None:
        """Add granted credits to a user (negative takes unspent ones away), at most
        `[quota] max_grant_credits` at a time."""
        if credits == 0:
            raise UsageError("Grant a number of credits other than 0.")
        limit = self._q.max_grant_credits
        if abs(credits) > limit:
            raise UsageError(f"Grant at most {limit:,} credits at a time "
                             "([quota] max_grant_credits).")
        now = self.clock()
        def body(tx: LedgerTx) -> None:
            try:
                row = tx.ensure_user_key(user_key, now)
            except ValueError:
                raise UsageError(
                    f"Name a user as platform:id, the way the config lists users (got {user_key!r})."
                ) from None
            if row.bonus_credits + credits < 0:
                raise UserError(
                    f"{row.name} has only {row.bonus_credits} granted credits left; "
                    f"cannot take away {-credits}."
                )
            if row.bonus_credits + credits > MAX_GRANTED_BALANCE:
                raise UserError(f"{row.name} already has {row.bonus_credits:,} granted credits; "
                                f"a balance may not pass {MAX_GRANTED_BALANCE:,}.")
            tx.record(LedgerEntry(kind="grant", credits=credits, user_key=user_key,
                                  charged_at=now, note=f"by {by}"), now)

        await self.store.run(body)

    async def set_tier(self, user_key: str, tier: str | None) -> None:
        """`store.set_tier` with the name checked against the configured tiers."""
        if tier is not None and tier not in self._q.tiers:
            known = ", ".join(sorted(self._q.tiers)) or "none configured"
            raise UsageError(f"There is no tier {tier!r} (tiers: {known}).")
        await self.store.set_tier(user_key, tier)

    def typical_costs(self) -> list[tuple[str, int]]:
        """What common jobs cost with the configured models and prices."""
        out: list[tuple[str, int]] = []
        models = self.settings.models
        for purpose, name in (("image", models.image), ("keyframes", models.keyframes),
                              ("extend", models.extend)):
            try:
                endpoint = catalog.by_name(name)
            except catalog.UnknownModel:
                continue
            # The endpoint's defaults are what a plain command produces.
            est = catalog.estimate(endpoint, {}, self._q.credits_per_usd, self.settings.prices)
            if purpose == "image":
                short = "LTX-2" if endpoint.key == "ltx-2" else endpoint.key
                seconds = round(est.frames / (endpoint.fixed_fps or (endpoint.frames.default_fps if endpoint.frames else 25)))
                label = f"{short} {seconds} s {min(est.width, est.height)}p"
            else:
                label = purpose
            out.append((label, est.credits))
        return out

    async def status(self, user: User, place: Place, *,
                     workspace_word: str = "workspace") -> QuotaStatus:
        """What `user` has used and has left here; `workspace_word` as in `admit`."""
        now = self.clock()
        workspace_key = workspace_key_of(place)
        row, usage = await self.store.run(
            lambda tx: (tx.get_user(user.key), tx.usage(user.key, workspace_key, now)), write=False)
        limits = self.limits_for(user, row)
        q = self._q
        return QuotaStatus(
            daily_used=usage.day_regular, daily_limit=limits.daily_credits,
            daily_left=max(0, limits.daily_credits - usage.day_regular),
            monthly_used=usage.month_regular, monthly_limit=limits.monthly_credits,
            monthly_left=max(0, limits.monthly_credits - usage.month_regular),
            daily_resets_at=next_day(now), monthly_resets_at=next_month(now),
            running_jobs=usage.running_jobs, max_concurrent_jobs=limits.max_concurrent_jobs,
            tier=limits.tier, exempt=limits.exempt, now=now,
            granted_credits=usage.bonus_balance,
            workspace_used=(usage.workspace_month_credits
                            if q.workspace_monthly_credits and workspace_key else None),
            workspace_limit=(q.workspace_monthly_credits
                             if q.workspace_monthly_credits and workspace_key else None),
            global_used=usage.global_day_credits if q.global_daily_credits else None,
            global_limit=q.global_daily_credits or None,
            workspace_word=workspace_word,
            typical=self.typical_costs(),
        )

    async def usage_by_user(self, days: int = 30) -> list[UsageRow]:
        return await self.store.usage_totals("user", self._since(days))

    async def usage_by_workspace(self, days: int = 30) -> list[UsageRow]:
        return await self.store.usage_totals("workspace", self._since(days))

    def _since(self, days: int) -> datetime:
        if days < 1:
            raise UsageError("Ask for at least 1 day of usage.")
        # Whole days: "7 days" means today and the 6 before it.
        return day_start(self.clock()) - timedelta(days=days - 1)


"""Every endpoint the bot knows, and finding one by the name a user or a job record gives."""

from __future__ import annotations

import difflib

from bot.catalog import extend, ltx2, ltx2_19b, ltx13b, ltx23, ltx23_22b, ltx_video
from bot.catalog.base import Endpoint

# The order is the order of the help text and of the model lists on every platform.
ENDPOINTS: tuple[Endpoint, ...] = (
    *ltx_video.ENDPOINTS, *ltx13b.ENDPOINTS, *extend.ENDPOINTS, *ltx2.ENDPOINTS,
    *ltx23_22b.ENDPOINTS, *ltx2_19b.ENDPOINTS, *ltx23.ENDPOINTS,
)


class UnknownModel(LookupError):
    """No endpoint has this name or id."""


def by_name(name: str) -> Endpoint:
    """The endpoint a user means by `name`: its key, fal id (with or without `fal-ai/`) or
    an alias, in any case."""
    wanted = name.strip().lower()
    for endpoint in ENDPOINTS:
        if wanted in (n.lower() for n in endpoint.names):
            return endpoint
    raise UnknownModel(name)


def by_endpoint_id(endpoint_id: str, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> Endpoint:
    for endpoint in endpoints:
        if endpoint.endpoint_id == endpoint_id:
            return endpoint
    raise UnknownModel(endpoint_id)


def all_names() -> list[str]:
    """Every key and alias, for "did you mean" hints."""
    return sorted({n for e in ENDPOINTS for n in (e.key, *e.aliases)})


def listing() -> str:
    """Every model by the names users may give: `ltx-video (ltx, ltx-t2v, t2v), ltx-2 (...)`.

    Refusals print this, and suggest only names from it, so a hint is always a name shown."""
    return ", ".join(f"{e.key} ({', '.join(e.aliases)})" if e.aliases else e.key
                     for e in ENDPOINTS)


def suggest(name: str, limit: int = 2) -> list[str]:
    """Names (keys or aliases) close to `name`, best first, at most one per model."""
    owner = {n.lower(): e for e in ENDPOINTS for n in (e.key, *e.aliases)}
    picked: list[str] = []
    seen: set[str] = set()
    for close in difflib.get_close_matches(name.strip().lower(), owner, n=len(owner), cutoff=0.6):
        if owner[close].key not in seen:
            seen.add(owner[close].key)
            picked.append(close)
    return picked[:limit]

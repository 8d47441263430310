"""Secrets kept out of every log line and error text.

Two kinds: the configured ones (tokens, keys, the signing secret; `bot.cli`
hands them to its log formatter) and those the bot learns while it runs, such
as fal's short-lived CDN upload token, which `remember` adds for the whole
process. Matching ignores case: a server or library that echoes a header
upper- or lower-cased must not leak it either.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

# Shorter values would match ordinary words; no real secret is this short.
MIN_SECRET_CHARS = 4

_learned: set[str] = set()
_lock = threading.Lock()  # log records are formatted on any thread


def remember(secret: str) -> None:
    """Redact `secret` from every log line from now on (a token issued at run time)."""
    if len(secret) >= MIN_SECRET_CHARS:
        with _lock:
            _learned.add(secret)


def learned() -> frozenset[str]:
    with _lock:
        return frozenset(_learned)


class Redactor:
    """Replaces each of a set of secrets, in any letter case, by `marker`."""

    def __init__(self, secrets: Iterable[str] = (), marker: str = "<redacted>") -> None:
        self.marker = marker
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Use these secrets (besides the ones already known)."""
        known = self._secrets | {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        if known != self._secrets:
            self._secrets = frozenset(known)
            # Longest first, so a secret that contains another is replaced whole.
            ordered = sorted(known, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(self.marker, text)

"""The blocklist: words and regular expressions refused in what a user wrote.

Text is folded before it is compared, so the usual disguises land on the plain word:
NFKC (full-width `ｆｏｒｂｉｄ` and ligatures become ASCII), case-folded, accents
removed (`forbíd`), invisible format characters dropped (zero-width spaces), and a
word spelled out letter by letter with separators between (`f.o.r.b.i.d`,
`f o r b i d`, `f-o-r-b-i-d`) read as the word. Words match whole words by default;
`*` at either end of an entry matches any ending or beginning (`forbid*`).

Patterns run on the `regex` library with a time limit: a pattern an admin typed must
not be able to hang the bot on a crafted prompt (catastrophic backtracking). A
pattern that runs out of time counts as a match: the prompt is refused, not let
through, and the pattern is logged so the admin can fix it.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex

log = logging.getLogger(__name__)

MAX_ENTRY_CHARS = 100  # a word or phrase
MAX_PATTERN_CHARS = 200
MAX_ENTRIES = 500
MAX_PATTERNS = 50
# Per pattern and text: far beyond what a sane pattern needs on a prompt of a few
# thousand characters, far below what a user would notice.
PATTERN_SECONDS = 0.05

_TOKEN = regex.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """`text` as the blocklist compares it: NFKC, case-folded, without accents or
    invisible format characters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    kept = (c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    return unicodedata.normalize("NFC", "".join(kept))


def tokens(text: str) -> list[str]:
    """The folded text's words (letters and digits; everything else separates)."""
    return _TOKEN.findall(fold(text))


def joined(words: Sequence[str]) -> list[str]:
    """`words` with every run of two or more one-letter words joined into one word:
    `f o r b i d` and `f.o.r.b.i.d` are read as `forbid`."""
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if run:
            out.extend(["".join(run)] if len(run) > 1 else run)
            run = []
        if word:
            out.append(word)
    return out


@dataclass(frozen=True)
class _Word:
    words: tuple[str, ...]
    prefix: bool  # `forbid*`: any ending
    suffix: bool  # `*forbid`: any beginning

    @property
    def spelled(self) -> str:
        return "".join(self.words)

    def found_in(self, text: Sequence[str]) -> bool:
        n = len(self.words)
        for i in range(len(text) - n + 1):
            window = text[i:i + n]
            if all(self._same(k, n, a, b) for k, (a, b) in enumerate(zip(window, self.words, strict=True))):
                return True
        return False

    def _same(self, k: int, n: int, seen: str, want: str) -> bool:
        if self.prefix and k == n - 1 and seen.startswith(want):
            return True
        if self.suffix and k == 0 and seen.endswith(want):
            return True
        return seen == want


def _word(entry: str) -> _Word | None:
    stripped = entry.strip()
    words = tuple(tokens(stripped))
    if not words:
        return None
    return _Word(words, prefix=stripped.endswith("*"), suffix=stripped.startswith("*"))


def check_words(entries: Iterable[str]) -> list[str]:
    """The entries cleaned (stripped, empty ones dropped); ValueError names a bad one."""
    out = [e.strip() for e in entries if e.strip()]
    if len(out) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} blocklist entries, got {len(out)}")
    for entry in out:
        if len(entry) > MAX_ENTRY_CHARS:
            raise ValueError(f"a blocklist entry is at most {MAX_ENTRY_CHARS} characters: {entry[:20]!r}…")
        if _word(entry) is None:
            raise ValueError(f"blocklist entry {entry!r} has no letters or digits")
    return out


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns, each compiled once; ValueError with the regex error names a bad one."""
    out = [p for p in patterns if p.strip()]
    if len(out) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} blocklist patterns, got {len(out)}")
    for pattern in out:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ValueError(f"a blocklist pattern is at most {MAX_PATTERN_CHARS} characters")
        try:
            _compile(pattern)
        except regex.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    return out


def _compile(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)


class Blocklist:
    """Compiled words and patterns; `blocks(*texts)` says whether any text is refused."""

    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self.words = [w for w in map(_word, words) if w is not None]
        self.patterns: list[regex.Pattern[str]] = []
        for pattern in patterns:
            try:
                self.patterns.append(_compile(pattern))
            except regex.error:
                # Settings are checked when they are set; an old bad row must not stop the bot.
                log.warning("blocklist pattern %r does not compile; ignored", pattern)

    def __bool__(self) -> bool:
        return bool(self.words or self.patterns)

    def blocks(self, *texts: str) -> bool:
        return any(self._blocks(t) for t in texts if t)

    def _blocks(self, text: str) -> bool:
        words = tokens(text)
        views = (words, joined(words))
        if any(w.found_in(view) for w in self.words for view in views):
            return True
        # A spelled-out run may take a neighbouring one-letter word with it ("a f o r b i d"
        # reads "aforbid"): inside a run, an entry is found anywhere.
        runs = [r for r in views[1] if len(r) > 1 and r not in words]
        if any(w.spelled in run for w in self.words for run in runs):
            return True
        folded = fold(text)
        spaced = " ".join(views[1])
        return any(self._search(p, t) for p in self.patterns for t in (folded, spaced))

    @staticmethod
    def _search(pattern: regex.Pattern[str], text: str) -> bool:
        try:
            return pattern.search(text, timeout=PATTERN_SECONDS) is not None
        except TimeoutError:
            log.warning("blocklist pattern %r ran out of time; the prompt is refused", pattern.pattern)
            return True

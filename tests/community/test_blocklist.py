"""The blocklist: what the folding catches (the usual disguises), what it leaves alone
(whole words), and patterns that are bad or slow."""

from __future__ import annotations

import time

import pytest

from bot.community.blocklist import Blocklist, check_patterns, check_words, fold, joined, tokens

WORDS = Blocklist(["forbid", "bad phrase", "gore*"])


@pytest.mark.parametrize("prompt", [
    "a forbid cat",
    "a FORBID cat",  # case
    "a Forbíd cat",  # an accent
    "a ｆｏｒｂｉｄ cat",  # full-width letters
    "a f.o.r.b.i.d cat",  # separators
    "a f o r b i d cat",
    "a f-o-r-b-i-d cat",
    "a f_o_r_b_i_d cat",
    "a for\u200bbid cat",  # a zero-width space inside the word
    "a ＦＯＲＢＩＤ!",
    "so bad   phrase here",  # a phrase across extra spaces
    "BAD-PHRASE",
    "goreish",  # `gore*` matches any ending
])
def test_disguises_are_caught(prompt: str) -> None:
    assert WORDS.blocks(prompt)


@pytest.mark.parametrize("prompt", [
    "forbidden fruit",  # whole words only: forbid is not forbidden
    "a bad day, a phrase",
    "the category",  # gore* is a prefix, not a substring
    "a cat on a mat",
])
def test_innocent_prompts_pass(prompt: str) -> None:
    assert not WORDS.blocks(prompt)


def test_the_negative_prompt_counts_too() -> None:
    assert WORDS.blocks("a sunny meadow", "f.o.r.b.i.d")
    assert not WORDS.blocks("a sunny meadow", "")


def test_folding_steps() -> None:
    assert fold("ＣＡＦÉ") == "cafe"
    assert tokens("f.o.r, b!") == ["f", "o", "r", "b"]
    assert joined(["a", "f", "o", "r", "cat", "x"]) == ["afor", "cat", "x"]


def test_patterns_match_the_folded_text() -> None:
    patterns = Blocklist(patterns=[r"\bkill\w*", r"blood{2,}"])
    assert patterns.blocks("KÏLLING spree")
    assert patterns.blocks("bloodd")
    assert patterns.blocks("k.i.l.l")  # the joined reading as well
    assert not patterns.blocks("skill issue")


def test_bad_patterns_are_refused_with_the_regex_error() -> None:
    with pytest.raises(ValueError, match=r"pattern '\(unclosed' is not a valid regular expression: "
                                         r"missing \)"):
        check_patterns(["(unclosed"])
    with pytest.raises(ValueError, match="at most 200 characters"):
        check_patterns(["a" * 201])
    with pytest.raises(ValueError, match="no letters or digits"):
        check_words(["..."])
    assert check_words([" a ", "", "b"]) == ["a", "b"]


def test_a_catastrophic_pattern_runs_out_of_time_and_refuses() -> None:
    # Nested quantifiers over an overlapping alternative: exponential in `re`.
    slow = Blocklist(patterns=[r"^(\w|\w\w)+\d$"])
    started = time.monotonic()
    assert slow.blocks("a" * 60 + "!")  # out of time: refused, not let through
    assert time.monotonic() - started < 2.0

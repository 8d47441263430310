"""The leading command words both chat platforms must read the same way after a mention.

One table for every adapter's tests, so the platforms cannot drift apart; `user`
is a mention in the platform's own syntax, for the admin line that names a user.
"""

from __future__ import annotations


def mention_words(user: str) -> list[tuple[str, str, str]]:
    """(message text after the bot's mention, expected command, expected text)."""
    return [
        ("keyframes a flower opens", "keyframes", "a flower opens"),
        ("/keyframes a flower opens", "keyframes", "a flower opens"),
        ("extend more waves", "extend", "more waves"),
        ("/extend more waves", "extend", "more waves"),
        ("quote a cat --seconds 4", "quote", "a cat --seconds 4"),
        ("/quote a cat", "quote", "a cat"),
        ("quota", "quota", ""),
        ("/quota", "quota", ""),
        ("jobs", "jobs", ""),
        ("/jobs", "jobs", ""),
        ("cancel 12", "cancel", "12"),
        ("/cancel 12", "cancel", "12"),
        ("help", "help", ""),
        ("/help", "help", ""),
        (f"admin grant {user} 50", "admin", f"grant {user} 50"),
        ("/admin usage", "admin", "usage"),
        ("/video a fox", "video", "a fox"),
        ("Quota", "quota", ""),
        ("the jobs of cats", "video", "the jobs of cats"),
        ("video of a cat", "video", "video of a cat"),
    ]

"""Bold and code in the markup a surface speaks, so help and lists are written once.

A chat may read Markdown (`**bold**`) or mrkdwn (`*bold*`), and a terminal prints
text as it is. A port names its markup in `PlatformTraits.markup`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.ports import Markup

_BOLD: dict[Markup, str] = {"markdown": "**{}**", "mrkdwn": "*{}*", "plain": "{}"}
_CODE: dict[Markup, str] = {"markdown": "`{}`", "mrkdwn": "`{}`", "plain": "{}"}


@dataclass(frozen=True)
class Style:
    """Formats text for one markup: `Style("mrkdwn").bold("Models")` is `*Models*`."""

    markup: Markup = "plain"

    def bold(self, text: str) -> str:
        return _BOLD[self.markup].format(text)

    def code(self, text: str) -> str:
        return _CODE[self.markup].format(text)

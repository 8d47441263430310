"""The `models` command and docs/MODELS.md: every model with what it does, a price
example, its license tag, the roles it is the default for, and its marks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import catalog
from bot.catalog import LICENSE_WORDS
from bot.commands.models import models_text
from bot.config import Settings
from bot.markup import Style
from bot.ports import Invocation, Place, User
from tests.fakes.chat import FakeChat

ALICE = User(platform="console", id="alice", name="Alice")
ROOM = Place(platform="console", channel="general", workspace="local")
MODELS_DOC = Path(__file__).parents[2] / "docs" / "MODELS.md"


def _line(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"{key}:"))


def test_every_model_is_listed_with_its_facts() -> None:
    text = models_text(Style("plain"), Settings())
    for endpoint in catalog.ENDPOINTS:
        line = _line(text, endpoint.key)
        assert LICENSE_WORDS[endpoint.license] in line
        # A price example, except where the price is per video (its own example, said once).
        flat = endpoint.price.usd_per_video is not None and "a video" in line
        assert ("e.g. $" in line) is not flat and line.count(" a video") <= 1
        assert ("no safety checker" in line) is (not endpoint.safety_checker)
        assert ("deprecated on fal" in line) is endpoint.deprecated
        assert ("(assumed)" in line) is endpoint.price.assumed
    assert "default for text" in _line(text, "ltx-2.3-22b/text-to-video")
    assert "$0.1798 for 121 frames at 1280x720" in _line(text, "ltx-2.3-22b/text-to-video")
    assert "$0.48 for 6 s at 1080p" in _line(text, "ltx-2.3/text-to-video")
    assert "default for" not in _line(text, "ltx-video")


def test_the_list_follows_the_settings() -> None:
    settings = Settings.model_validate({"models": {"retake": "ltx-2/retake-video",
                                                   "allow_research_only": False},
                                        "prices": {"ltx-2.3": {"usd_per_second": 0.05}}})
    text = models_text(Style("plain"), settings)
    assert "default for retake" in _line(text, "ltx-2/retake-video")
    assert "turned off here" in _line(text, "ltx-video")
    assert "e.g. $0.30 for 6 s" in _line(text, "ltx-2.3/text-to-video")


@pytest.mark.parametrize("markup", ["plain", "markdown", "mrkdwn"])
async def test_models_is_a_command_word(app: Any, markup: str) -> None:
    from bot.ports import PlatformTraits

    chat = FakeChat("console", traits=PlatformTraits(markup=markup))  # type: ignore[arg-type]
    app.register_port(chat)
    await app.bot.handle(Invocation(user=ALICE, place=ROOM, command="models"), chat)
    said = [c.text or "" for c in chat.of_kind("tell")][-1]
    assert all(e.key in said for e in catalog.ENDPOINTS)


def test_models_doc_lists_every_model() -> None:
    doc = MODELS_DOC.read_text(encoding="utf-8")
    for endpoint in catalog.ENDPOINTS:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{endpoint.key}` "))
        assert LICENSE_WORDS[endpoint.license] in row
        assert ("**(assumed)**" in row) is endpoint.price.assumed
        assert ("**deprecated**" in row) is endpoint.deprecated

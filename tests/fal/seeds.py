"""The examples in fal's endpoint docs, as the committed facts hold them.

The docs themselves live outside the repository (`../shared/seeds`); the tests
read `tests/specs/facts.json` instead, so a bare clone's `make test` passes, and
`make check-specs` (the only reader of `../shared`) shows the facts still match
the docs.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from tests.specs.extract import SEED_FILES, json_blocks, load

__all__ = ["SEED_FILES", "examples", "facts", "json_blocks"]


@functools.cache
def _seeds() -> dict[str, Any]:
    seeds: dict[str, Any] = load()["seeds"]
    return seeds


def facts(filename: str) -> dict[str, Any]:
    """One doc's facts: key, inputs, outputs, enums, fields (a copy: tests may change it)."""
    return copy.deepcopy(_seeds()[filename])


def examples(filename: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(input examples, output examples) of one doc."""
    doc = facts(filename)
    return doc["inputs"], doc["outputs"]

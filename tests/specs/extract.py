"""The facts the tests check the catalog against, extracted from fal's endpoint docs.

The docs live outside the repository (`../shared/seeds`), so the tests read the
facts from `facts.json` beside this file instead, and `make check-specs` runs
this module to show the committed facts still match the docs:

    python -m tests.specs.extract --check ../shared     # exit 1 and a diff when they drift
    python -m tests.specs.extract --write ../shared     # refresh facts.json from the docs
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

FACTS = Path(__file__).with_name("facts.json")

# doc file -> catalog key
SEED_FILES = {
    "ltx-video-text-to-video.txt": "ltx-video",
    "ltx-video-image-to-video.txt": "ltx-video-i2v",
    "ltx-video-13b-distilled-multiconditioning.txt": "ltx-13b",
    "ltx-video-v097-extend.txt": "ltx-extend",
    "ltx-2-19b-image-to-video.txt": "ltx-2",
}


def json_blocks(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts on a line of its own (bare or inside a ```json fence)."""
    decoder = json.JSONDecoder()
    blocks: list[dict[str, Any]] = []
    offset = 0
    consumed_until = 0
    for line in text.splitlines(keepends=True):
        start = offset
        offset += len(line)
        if start < consumed_until or line.strip() != "{":
            continue
        try:
            value, end = decoder.raw_decode(text, start + line.index("{"))
        except ValueError:
            continue
        if isinstance(value, dict):
            blocks.append(value)
            consumed_until = end
    return blocks


def _is_output(block: dict[str, Any]) -> bool:
    video = block.get("video")
    return isinstance(video, dict) and "url" in video


def enum_sections(text: str) -> dict[str, list[str]]:
    """`<field> <Name>Enum ... Possible enum values: a, b` in the 0.9.7 docs' two layouts."""
    found: dict[str, list[str]] = {}
    pattern = re.compile(r"^(\w+)\s+\w+Enum\b(.*?)Possible enum values: ([^\n]+)", re.M | re.S)
    for match in pattern.finditer(text):
        found[match.group(1)] = [v.strip() for v in match.group(3).split(",")]
    return found


def schema_fields(text: str) -> dict[str, dict[str, Any]]:
    """The structured `### Input Schema` of the LTX-2 doc: default, range, options, required."""
    if "### Input Schema" not in text:
        return {}
    schema = text.split("### Input Schema", 1)[1].split("**Required Parameters Example**", 1)[0]
    blocks = re.split(r"^- \*\*`(\w+)`\*\*", schema, flags=re.M)[1:]
    fields: dict[str, dict[str, Any]] = {}
    for name, body in zip(blocks[::2], blocks[1::2], strict=True):
        fact: dict[str, Any] = {"required": "_required_" in body.split("\n", 1)[0]}
        default = re.search(r"- Default: `(.*?)`\n", body)
        if default:
            fact["default"] = json.loads(default.group(1))
        bounds = re.search(r"- Range: `([\d.]+)` to `([\d.]+)`", body)
        if bounds:
            fact["range"] = [float(bounds.group(1)), float(bounds.group(2))]
        options = re.search(r"- Options: (.+)\n", body)
        if options:
            fact["options"] = [json.loads(v) for v in re.findall(r'`("[^`]*")`', options.group(1))]
        fields[name] = fact
    return fields


def seed_facts(seeds: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for filename, key in sorted(SEED_FILES.items()):
        text = (seeds / filename).read_text(encoding="utf-8")
        blocks = json_blocks(text)
        facts[filename] = {
            "key": key,
            "inputs": [b for b in blocks if not _is_output(b)],
            "outputs": [b for b in blocks if _is_output(b)],
            "enums": enum_sections(text),
            "fields": schema_fields(text),
        }
    return facts


def extract(shared: Path) -> dict[str, Any]:
    seeds = shared / "seeds"
    docs = sorted(p.name for p in seeds.glob("*.txt"))
    if docs != sorted(SEED_FILES):
        raise SystemExit(f"seed docs in {seeds} are {docs}, expected {sorted(SEED_FILES)}")
    return {"seeds": seed_facts(seeds)}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FACTS.read_text(encoding="utf-8"))
    return data


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare facts.json with the docs")
    mode.add_argument("--write", action="store_true", help="rewrite facts.json from the docs")
    parser.add_argument("shared", type=Path, help="the shared/ folder with seeds/ and specs/")
    args = parser.parse_args(argv)
    fresh = _dump(extract(args.shared))
    if args.write:
        FACTS.write_text(fresh, encoding="utf-8")
        print(f"wrote {FACTS}")
        return 0
    committed = FACTS.read_text(encoding="utf-8")
    if committed == fresh:
        print(f"{FACTS.name} matches the docs in {args.shared}")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        committed.splitlines(keepends=True), fresh.splitlines(keepends=True),
        "facts.json (committed)", "facts.json (from the docs)"))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

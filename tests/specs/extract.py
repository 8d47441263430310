"""The facts the tests check the catalog against, extracted from fal's endpoint docs.

The docs live outside the repository (`../shared/seeds` for the five seed endpoints,
`../shared/specs` for the LTX-2.3 / LTX-2 19B / LTX-2.3 22B ones), so the tests read
the facts from `facts.json` beside this file instead, and `make check-specs` runs
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


# spec file -> the endpoint ids it covers, each with the label its tables use for it
SPEC_FILES: dict[str, dict[str, str]] = {
    "ltx-2.3-text-to-video.md": {"fal-ai/ltx-2.3/text-to-video": "Pro",
                                 "fal-ai/ltx-2.3/text-to-video/fast": "Fast"},
    "ltx-2.3-image-to-video.md": {"fal-ai/ltx-2.3/image-to-video": "Pro",
                                  "fal-ai/ltx-2.3/image-to-video/fast": "Fast"},
    "ltx-2.3-extend-video.md": {"fal-ai/ltx-2.3/extend-video": ""},
    "ltx-2.3-retake-video.md": {"fal-ai/ltx-2.3/retake-video": ""},
    "ltx-2.3-audio-to-video.md": {"fal-ai/ltx-2.3/audio-to-video": ""},
    "ltx-2-retake-video.md": {"fal-ai/ltx-2/retake-video": ""},
    "ltx-2-19b-text-to-video.md": {"fal-ai/ltx-2-19b/text-to-video": ""},
    "ltx-2-19b-extend-video.md": {"fal-ai/ltx-2-19b/extend-video": ""},
    "ltx-2-19b-video-to-video.md": {"fal-ai/ltx-2-19b/video-to-video": ""},
    "ltx-2-19b-audio-to-video.md": {"fal-ai/ltx-2-19b/audio-to-video": ""},
    "ltx-2.3-22b.md": {"fal-ai/ltx-2.3-22b/text-to-video": "T2V",
                       "fal-ai/ltx-2.3-22b/image-to-video": "I2V",
                       "fal-ai/ltx-2.3-22b/distilled/text-to-video": "D-T2V",
                       "fal-ai/ltx-2.3-22b/distilled/image-to-video": "D-I2V"},
}
_NUMBER = r"-?\d+(?:\.\d+)?"


def fenced_json(text: str) -> list[dict[str, Any]]:
    """Every ```json fence of a spec, each one JSON object."""
    return [json.loads(body) for body in re.findall(r"```json\n(.*?)```", text, re.S)]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.replace("\\|", "\u2502").strip().strip("|").split("|")]


def _values(cell: str) -> list[Any]:
    """Every backticked JSON value in a cell (`6`, `"1080p"`); bare words stay strings."""
    out: list[Any] = []
    for raw in re.findall(r"`([^`]*)`", cell):
        try:
            out.append(json.loads(raw))
        except ValueError:
            out.append(raw)
    return out


def _by_label(cell: str, labels: list[str]) -> dict[str, str]:
    """`Pro: a. Fast: b` or `T2V/D-T2V x; I2V/D-I2V y` -> {label: its part}; {} when unlabelled."""
    found: dict[str, str] = {}
    for part in re.split(r"[;.] (?=[A-Z])", cell):
        head = part.split(":", 1)[0] if ":" in part.split("`", 1)[0] else part.split(" ", 1)[0]
        named = [lab for lab in head.replace(":", "").split("/") if lab in labels]
        for label in named:
            found[label] = part
    return found


def _field_fact(cells: dict[str, str], labels: list[str]) -> dict[str, Any]:
    fact: dict[str, Any] = {"required": cells["req"].split(" ", 1)[0]}
    for what, cell in (("default", cells["default"]), ("options", cells["range / options"])):
        variants = _by_label(cell, labels)
        if variants:
            fact[what + "_by"] = {lab: _values(part) for lab, part in sorted(variants.items())}
        elif _values(cell):
            fact[what] = _values(cell) if what == "options" else _values(cell)[0]
    span = re.search(rf"({_NUMBER})\s*[–-]\s*({_NUMBER})", cells["range / options"].replace("`", ""))
    if span and "options" not in fact:
        fact["range"] = [float(span.group(1)), float(span.group(2))]
    at_most = re.search(rf"≤\s*({_NUMBER})", cells["range / options"])
    if at_most:
        fact["max"] = float(at_most.group(1))
    if labels and any(lab in cells for lab in labels):
        fact["on"] = [lab for lab in labels if cells.get(lab) == "✓"]
    return fact


def input_table(text: str, labels: list[str]) -> dict[str, dict[str, Any]]:
    """The `## Input` table: each field's required, default, range and options."""
    section = text.split("## Input", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = _cells(rows[0])
    fields: dict[str, dict[str, Any]] = {}
    for line in rows[2:]:
        cells = dict(zip(header, _cells(line), strict=True))
        fields[cells["field"].strip("`")] = _field_fact(cells, labels)
    return fields


def spec_facts(specs: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for filename, endpoints in sorted(SPEC_FILES.items()):
        text = (specs / filename).read_text(encoding="utf-8")
        blocks = fenced_json(text)
        labels = [lab for lab in endpoints.values() if lab]
        facts[filename] = {
            "endpoints": endpoints,
            "inputs": [b for b in blocks if not _is_output(b)],
            "outputs": [b for b in blocks if _is_output(b)],
            "fields": input_table(text, labels),
        }
    return facts


def extract(shared: Path) -> dict[str, Any]:
    seeds = shared / "seeds"
    docs = sorted(p.name for p in seeds.glob("*.txt"))
    if docs != sorted(SEED_FILES):
        raise SystemExit(f"seed docs in {seeds} are {docs}, expected {sorted(SEED_FILES)}")
    specs = shared / "specs"
    found = sorted(p.name for p in specs.glob("*.md") if p.name not in ("README.md", "licenses.md"))
    if found != sorted(SPEC_FILES):
        raise SystemExit(f"spec files in {specs} are {found}, expected {sorted(SPEC_FILES)}")
    return {"seeds": seed_facts(seeds), "specs": spec_facts(specs)}


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

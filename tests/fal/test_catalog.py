"""The catalog against the endpoint docs: every example in the docs must fit it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
from annotated_types import Ge, Le

from bot.catalog import VideoOutput, by_name, estimate, usd_to_credits
from tests.fal.seeds import SEED_FILES, examples, facts, json_blocks

TESTS = Path(__file__).resolve().parents[1]


def test_the_facts_cover_every_endpoint_doc() -> None:
    for filename, key in SEED_FILES.items():
        assert facts(filename)["key"] == key


# A path into the folder beside the clone, in code: "../shared/...", "/work/shared", `/ "shared"`.
_SHARED = re.compile(r"""["'][^"'\n]*(?:\.\./|/work/)shared\b[^"'\n]*["']|["']shared["']""")


def test_no_test_reads_the_docs_beside_the_clone() -> None:
    """A bare clone has no ../shared: only `make check-specs` (tests/specs/extract.py) reads it."""
    readers = [str(p.relative_to(TESTS)) for p in sorted(TESTS.rglob("*.py"))
               if p != TESTS / "specs" / "extract.py" and p != Path(__file__).resolve()
               and _SHARED.search(p.read_text(encoding="utf-8"))]
    assert readers == []


@pytest.mark.parametrize("filename", sorted(SEED_FILES))
def test_input_examples_validate_and_round_trip(filename: str) -> None:
    endpoint = by_name(SEED_FILES[filename])
    inputs, _ = examples(filename)
    assert inputs, f"no input example found in {filename}"
    for example in inputs:
        model = endpoint.input_model.model_validate(example)
        assert model.model_dump(mode="json", exclude_unset=True) == example


@pytest.mark.parametrize("filename", sorted(SEED_FILES))
def test_output_examples_validate(filename: str) -> None:
    _, outputs = examples(filename)
    assert outputs, f"no output example found in {filename}"
    for example in outputs:
        parsed = VideoOutput.model_validate(example)
        assert parsed.video.url == example["video"]["url"]


def test_ltx2_full_example_is_the_documented_one() -> None:
    inputs, outputs = examples("ltx-2-19b-image-to-video.txt")
    assert len(inputs) == 2  # required-parameters example and full example
    full = max(inputs, key=len)
    assert full["num_frames"] == 121 and full["video_size"] == "auto"
    assert outputs[0]["video"]["num_frames"] == 257


def test_ltx2_price_example() -> None:
    endpoint = by_name("ltx-2")
    payload = {"num_frames": 121, "video_size": {"width": 1280, "height": 720}}
    est = estimate(endpoint, payload, credits_per_usd=100.0)
    assert est.usd == pytest.approx(0.2016, abs=1e-9)
    assert (est.width, est.height, est.frames) == (1280, 720, 121)
    assert est.credits == usd_to_credits(0.2016, 100.0) == 21


def test_json_blocks_skips_code_and_nested_lines() -> None:
    text = 'import { fal } from "x";\nconst r = {\n a: 1\n};\n{\n"a": {\n"b": 1\n}\n}\nafter\n'
    assert json_blocks(text) == [{"a": {"b": 1}}]


@pytest.mark.parametrize("filename", sorted(SEED_FILES))
def test_output_examples_round_trip(filename: str) -> None:
    _, outputs = examples(filename)
    for example in outputs:
        assert VideoOutput.model_validate(example).model_dump(mode="json", exclude_unset=True) == example


# Fields whose example value is the user's input, not the documented default.
_INPUT_FIELDS = {"prompt", "image_url", "end_image_url", "video", "images", "videos", "seed"}


@pytest.mark.parametrize("filename", sorted(SEED_FILES))
def test_every_documented_default_is_the_models_default(filename: str) -> None:
    endpoint = by_name(SEED_FILES[filename])
    inputs, _ = examples(filename)
    full = max(inputs, key=len)
    checked = 0
    for name, value in full.items():
        if name in _INPUT_FIELDS:
            continue
        field = endpoint.input_model.model_fields[name]
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        assert default == value, (filename, name, default, value)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("filename", ["ltx-video-13b-distilled-multiconditioning.txt",
                                      "ltx-video-v097-extend.txt"])
def test_documented_enums_match(filename: str) -> None:
    endpoint = by_name(SEED_FILES[filename])
    enums = facts(filename)["enums"]
    assert set(enums) == {"resolution", "aspect_ratio"}
    for name, values in enums.items():
        assert set(get_args(endpoint.input_model.model_fields[name].annotation)) == set(values)


def test_ltx2_fields_defaults_ranges_and_options_match_the_doc() -> None:
    """The LTX-2 doc is structured: check every field it lists, field by field."""
    documented = facts("ltx-2-19b-image-to-video.txt")["fields"]
    model = by_name("ltx-2").input_model
    assert set(documented) == set(model.model_fields)
    for name, fact in documented.items():
        field = model.model_fields[name]
        if "default" in fact:
            assert field.default == fact["default"], name
        if "range" in fact:
            lo = next(m.ge for m in field.metadata if isinstance(m, Ge))
            hi = next(m.le for m in field.metadata if isinstance(m, Le))
            assert (lo, hi) == tuple(fact["range"]), name
        if "options" in fact:
            assert set(fact["options"]) <= set(get_args(field.annotation)) | _size_names(field.annotation), name
        if fact["required"]:
            assert field.is_required(), name


def _size_names(annotation: object) -> set[str]:
    names: set[str] = set()
    for arg in get_args(annotation):
        names |= {a for a in get_args(arg) if isinstance(a, str)}
    return names


def test_every_catalog_field_is_described() -> None:
    """Descriptions reach operators and users (help, check-config); none may be missing."""
    from bot import catalog

    models = {e.input_model for e in catalog.ENDPOINTS} | {catalog.VideoOutput, catalog.VideoFile}
    nested = {catalog.ImageSize, catalog.LoRAWeight, catalog.ImageConditioningInput,
              catalog.VideoConditioningInput, catalog.ExtendVideoConditioning}
    missing = [f"{m.__name__}.{n}" for m in models | nested
               for n, f in m.model_fields.items() if not f.description]
    assert missing == []

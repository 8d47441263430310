"""The catalog against the endpoint docs: every example in the docs must fit it."""

from __future__ import annotations

import pytest

from bot.catalog import VideoOutput, by_name, estimate, usd_to_credits
from tests.fal.seeds import SEED_FILES, SEEDS, examples, json_blocks


def test_seed_docs_are_present() -> None:
    # CI keeps shared/ beside the clone; a missing folder is a broken setup, not a skip.
    assert SEEDS.is_dir(), f"endpoint docs missing at {SEEDS}"
    assert sorted(p.name for p in SEEDS.glob("*.txt")) == sorted(SEED_FILES)


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

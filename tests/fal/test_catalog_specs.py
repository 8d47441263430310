"""The catalog against the specs of issue 12 (LTX-2.3, LTX-2 19B, LTX-2.3 22B), field by
field: every endpoint is there, every example validates and round-trips, every example
response validates, and each field's presence, requirement, default, range and options
are the spec's. The facts come from tests/specs/facts.json (`make check-specs`)."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

import pytest
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel, ValidationError

from bot import catalog, framing
from bot.catalog import Endpoint
from tests.specs import extract

SPECS: dict[str, Any] = extract.load()["specs"]
CASES = [(name, endpoint_id, label) for name, spec in sorted(SPECS.items())
         for endpoint_id, label in sorted(spec["endpoints"].items())]


def _endpoint(endpoint_id: str) -> Endpoint:
    return catalog.by_endpoint_id(endpoint_id)


def _subset(sent: Any, kept: Any) -> bool:
    """Everything sent came back the same (numbers compared as numbers)."""
    if isinstance(sent, dict):
        return isinstance(kept, dict) and all(_subset(v, kept.get(k)) for k, v in sent.items())
    if isinstance(sent, int | float) and not isinstance(sent, bool):
        return isinstance(kept, int | float) and float(sent) == float(kept)
    return bool(sent == kept)


def test_every_spec_file_and_endpoint_is_covered() -> None:
    assert sorted(SPECS) == sorted(extract.SPEC_FILES)
    ids = {e.endpoint_id for e in catalog.ENDPOINTS}
    assert {endpoint_id for _, endpoint_id, _ in CASES} <= ids


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_example_validates_and_round_trips(name: str) -> None:
    spec = SPECS[name]
    endpoints = [_endpoint(i) for i in spec["endpoints"]]
    taken: set[str] = set()
    for example in spec["inputs"]:
        fits = []
        for endpoint in endpoints:
            try:
                data = endpoint.input_model.model_validate(example)
            except ValidationError:
                continue
            fits.append(endpoint.key)
            assert _subset(example, data.model_dump(mode="json", exclude_none=True)), endpoint.key
        assert fits, (name, example)
        taken.update(fits)
    # Pro/Fast, T2V/I2V: each endpoint of the file takes at least one of its examples.
    assert taken == {e.key for e in endpoints}
    for response in spec["outputs"]:
        for endpoint in endpoints:
            output = endpoint.output_model.model_validate(response)
            assert output.video.url == response["video"]["url"]


def _choices(annotation: Any) -> set[Any] | None:
    arms = get_args(annotation) if get_origin(annotation) is not Literal else (annotation,)
    for arm in arms:
        if get_origin(arm) is Literal:
            return set(get_args(arm))
    return None


def _length_bounds(info: Any) -> tuple[float | None, float | None]:
    lo = next((float(m.min_length) for m in info.metadata if isinstance(m, MinLen)), None)
    hi = next((float(m.max_length) for m in info.metadata if isinstance(m, MaxLen)), None)
    return lo, hi


def _check_range(endpoint: Endpoint, field_name: str, fact: dict[str, Any]) -> None:
    info = endpoint.input_model.model_fields[field_name]
    if field_name.endswith("_url"):
        # An input's own limit (audio 2-20 s long) is the endpoint's, not the field's.
        if "range" in fact:
            assert endpoint.audio_seconds == tuple(fact["range"]), field_name
        return
    if info.annotation in (str, str | None):
        lo, hi = _length_bounds(info)
    else:
        lo, hi = framing.metadata_bounds(info)
    if "range" in fact:
        assert [lo, hi] == fact["range"], (field_name, lo, hi)
    if "max" in fact:
        assert hi == fact["max"], field_name


def _check_field(endpoint: Endpoint, label: str, field_name: str, fact: dict[str, Any]) -> None:
    model: type[BaseModel] = endpoint.input_model
    assert field_name in model.model_fields, field_name
    info = model.model_fields[field_name]
    required = fact["required"] == "yes" or (fact["required"] == "yes" and label in fact.get("on", []))
    assert info.is_required() == required, field_name
    default = fact.get("default_by", {}).get(label, [None])[0] if "default_by" in fact else fact.get(
        "default")
    if default is not None and not info.is_required():
        assert _subset(default, info.default), (field_name, info.default, default)
    options = fact.get("options_by", {}).get(label) if "options_by" in fact else fact.get("options")
    choices = _choices(info.annotation)
    if options and choices is not None:
        wanted = {o for o in options if o != "{width,height}"}
        if field_name == "video_size" and "auto" not in choices:
            wanted.discard("auto")  # "`auto` only on I2V/D-I2V" and not on 19B text-to-video
        assert choices == wanted, (field_name, choices, wanted)
    _check_range(endpoint, field_name, fact)


@pytest.mark.parametrize(("name", "endpoint_id", "label"), CASES)
def test_fields_match_the_spec(name: str, endpoint_id: str, label: str) -> None:
    endpoint = _endpoint(endpoint_id)
    fields: dict[str, Any] = SPECS[name]["fields"]
    listed = {f for f, fact in fields.items() if not label or label in fact.get("on", [label])}
    for field_name in sorted(listed):
        fact = dict(fields[field_name])
        if fact["required"].startswith("yes") and "(" in fact["required"]:
            fact["required"] = "yes"  # "yes (I2V)": listed only where it exists
        _check_field(endpoint, label, field_name, fact)
    # Nothing beyond the spec: every field the model sends is one fal documents.
    assert set(endpoint.input_model.model_fields) == listed


def test_fal_examples_of_megapixel_prices_within_one_percent() -> None:
    """fal's worked example (121 frames at 1280x720, about 112 MP) on each per-MP page."""
    examples = {"ltx-2": 0.2016, "ltx-2-19b/video-to-video": 0.2016,
                "ltx-2-19b/extend-video": 0.2016, "ltx-2.3-22b/text-to-video": 0.179,
                "ltx-2.3-22b/distilled/image-to-video": 0.1344,
                "ltx-2.3-22b/image-to-video": 0.2013,  # its /lora sibling's (assumed)
                "ltx-2.3-22b/distilled/text-to-video": 0.1567}
    for key, quoted in examples.items():
        price = catalog.by_name(key).price
        computed = price.usd(1280, 720, 121)
        assert computed == round(112 * float(price.usd_per_megapixel or 0), 6)  # the stated rate
        assert computed == pytest.approx(quoted, rel=0.01), key


@pytest.mark.parametrize(
    ("key", "tiers"),
    [("ltx-2.3/text-to-video", (0.08, 0.16, 0.32)), ("ltx-2.3/text-to-video/fast", (0.04, 0.08, 0.16)),
     ("ltx-2.3/image-to-video", (0.06, 0.12, 0.24)),
     ("ltx-2.3/image-to-video/fast", (0.06, 0.12, 0.24))],
)
def test_per_second_rates_by_resolution(key: str, tiers: tuple[float, ...]) -> None:
    price = catalog.by_name(key).price
    for resolution, rate in zip(("1080p", "1440p", "2160p"), tiers, strict=True):
        assert price.usd(0, 0, 0, seconds=8, resolution=resolution) == pytest.approx(8 * rate)


def test_license_tags_are_never_inferred() -> None:
    tags = {e.key: e.license for e in catalog.ENDPOINTS}
    assert tags["ltx-video"] == tags["ltx-video-i2v"] == "research"
    assert tags["ltx-13b"] == tags["ltx-extend"] == tags["ltx-2"] == "commercial"
    # Every id the specs cover was not seen with a tag, siblings notwithstanding.
    assert {tags[_endpoint(i).key] for _, i, _ in CASES} == {"unconfirmed"}
    assert [e.key for e in catalog.ENDPOINTS if e.deprecated] == ["ltx-extend"]


def test_assumed_prices_are_the_unconfirmed_ones() -> None:
    assumed = {e.key for e in catalog.ENDPOINTS if e.price.assumed}
    assert assumed == {"ltx-2.3/image-to-video/fast", "ltx-2.3/retake-video",
                       "ltx-2.3/audio-to-video", "ltx-2-19b/text-to-video",
                       "ltx-2-19b/audio-to-video", "ltx-2.3-22b/image-to-video",
                       "ltx-2.3-22b/distilled/text-to-video"}


def test_keys_are_ids_without_fal_ai_and_old_keys_stay() -> None:
    for _, endpoint_id, _ in CASES:
        assert _endpoint(endpoint_id).key == endpoint_id.removeprefix("fal-ai/")
    for old in ("ltx-video", "ltx-video-i2v", "ltx-13b", "ltx-extend", "ltx-2"):
        assert catalog.by_name(old).key == old
    names = [n.lower() for e in catalog.ENDPOINTS for n in e.names]
    assert len(names) == len(set(names))  # no name means two models

"""The length step of routing: --seconds, --frames and --fps onto an endpoint's fields.

Models count length one of three ways: frames (`FrameRule`: seconds convert with the
fps and snap to LTX's 8k+1 counts), whole seconds from a list or a range
(`DurationRule`: --seconds goes to the nearest allowed value, and the reply says so),
or not at all (a fixed length, or as long as the input audio).
"""

from __future__ import annotations

from bot.catalog import DurationRule, FrameRule
from bot.errors import UnsupportedOption, UsageError
from bot.framing import literal_choices
from bot.grammar import format_number
from bot.routing_limits import Draft, check_model_range, flag, who_takes


def length(draft: Draft) -> None:
    endpoint = draft.endpoint
    if endpoint.duration is not None:
        _duration(draft, endpoint.duration)
        return
    rule = endpoint.frames
    if rule is None:
        for name in ("seconds", "frames", "fps"):
            if name in draft.options:
                how = ("follows the length of its audio" if endpoint.audio_seconds
                       else "makes clips of a fixed length")
                raise UnsupportedOption(
                    f"{endpoint.title} {how}, so {flag(name)} does not apply."
                    + who_takes(endpoint, name, draft.media)
                )
        return
    fps = _fps(draft, rule)
    frames = _frames(draft, rule, fps)
    if frames is not None:
        draft.payload[rule.field] = frames


def _duration(draft: Draft, rule: DurationRule) -> None:
    endpoint, options = draft.endpoint, draft.options
    if "frames" in options:
        raise UsageError(f"{endpoint.title} takes its length in seconds: give --seconds, "
                         "not --frames.")
    if "fps" in options:
        choices = literal_choices(endpoint, "fps") if "fps" in endpoint.input_model.model_fields else ()
        fps = float(options["fps"])
        if not choices:
            raise UsageError(f"{endpoint.title} does not take --fps.")
        if fps not in [float(a) for a in choices]:
            raise UsageError(f"{endpoint.title} takes --fps {', '.join(str(a) for a in choices)}; "
                             f"got {format_number(fps)}.")
        draft.payload["fps"] = int(fps)
    if "seconds" not in options:
        return
    asked = float(options["seconds"])
    if rule.choices:
        seconds = rule.nearest(asked)
        if seconds != asked:
            allowed = ", ".join(str(c) for c in rule.choices)
            draft.notes.append(f"{endpoint.title} makes {allowed} s clips: --seconds "
                               f"{format_number(asked)} became {format_number(seconds)}.")
        draft.payload[rule.field] = int(seconds)
        return
    if not rule.minimum <= asked <= rule.maximum:
        raise UsageError(f"--seconds must be between {format_number(rule.minimum)} and "
                         f"{format_number(rule.maximum)} for {endpoint.title}; got "
                         f"{format_number(asked)}.")
    draft.payload[rule.field] = asked


def _fps(draft: Draft, rule: FrameRule) -> float:
    endpoint = draft.endpoint
    fps = float(draft.options.get("fps", rule.default_fps))
    if rule.fps_field:
        check_model_range(endpoint, "fps", rule.fps_field, fps)
        if endpoint.input_model.model_fields[rule.fps_field].annotation is int:
            if not fps.is_integer():
                raise UsageError(
                    f"{endpoint.title} takes a whole --fps, e.g. --fps 24; got {format_number(fps)}."
                )
            draft.payload[rule.fps_field] = int(fps)
        else:
            draft.payload[rule.fps_field] = fps
    return fps


def _frames(draft: Draft, rule: FrameRule, fps: float) -> int | None:
    options = draft.options
    if "frames" in options and "seconds" in options:
        raise UsageError("Give either --seconds or --frames, not both.")
    if "frames" in options:
        frames = rule.snap(int(options["frames"]))
        asked = f"--frames {options['frames']}"
    elif "seconds" in options:
        frames = rule.frames_for_seconds(float(options["seconds"]), fps)
        asked = f"--seconds {format_number(float(options['seconds']))}"
    else:
        return None
    if not rule.minimum <= frames <= rule.maximum:
        lo_s, hi_s = (rule.minimum - 1) / fps, (rule.maximum - 1) / fps
        raise UsageError(
            f"{asked} is out of range for {draft.endpoint.title}: at {format_number(fps)} fps it "
            f"makes {rule.minimum} to {rule.maximum} frames ({lo_s:.1f} s to {hi_s:.1f} s)."
        )
    return frames

"""The Retake form: what the Retake button under a finished video opens on Slack.

It asks for the section (from and to, in seconds of the clip), what to redo (video,
audio or both) and a prompt; its submission starts the retake of that job's video.
Wrong values are answered in the form itself (`response_action: errors`), before
anything runs.
"""

from __future__ import annotations

from typing import Any

from adapters.slack_render import MODAL_TITLE_MAX, Block, ModalMeta, clip

RETAKE_MODAL = "ltx_retake_modal"
REPLACE = (("both", "Video and audio"), ("video", "Only the video"), ("audio", "Only the audio"))


def _number_input(block: str, label: str, example: str) -> Block:
    return {"type": "input", "block_id": block,
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "number_input", "action_id": block, "is_decimal_allowed": True,
                        "min_value": "0",
                        "placeholder": {"type": "plain_text", "text": example}}}


def retake_modal(job_id: int, meta: ModalMeta) -> Block:
    """The form for redoing a section of job `job_id`'s video."""
    options = [{"text": {"type": "plain_text", "text": text}, "value": value}
               for value, text in REPLACE]
    return {
        "type": "modal", "callback_id": RETAKE_MODAL,
        "title": {"type": "plain_text", "text": clip(f"Retake job #{job_id}", MODAL_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": "Retake"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": meta.dump(),
        "blocks": [
            _number_input("from", "From (seconds of the clip)", "2"),
            _number_input("to", "To (seconds of the clip)", "5"),
            {"type": "input", "block_id": "replace", "optional": True,
             "label": {"type": "plain_text", "text": "Redo"},
             "element": {"type": "static_select", "action_id": "replace", "options": options,
                         "initial_option": options[0]}},
            {"type": "input", "block_id": "prompt", "optional": True,
             "label": {"type": "plain_text", "text": "What the section shows instead"},
             "hint": {"type": "plain_text", "text": "Empty: the job's own prompt."},
             "element": {"type": "plain_text_input", "action_id": "prompt", "multiline": True,
                         "max_length": 2000}},
        ],
    }


def _state(view: dict[str, Any], block: str) -> dict[str, Any]:
    values = (view.get("state") or {}).get("values") or {}
    entry = (values.get(block) or {}).get(block)
    return entry if isinstance(entry, dict) else {}


def read_retake(view: dict[str, Any]) -> tuple[str, dict[str, Any]] | dict[str, str]:
    """(prompt, the core's options) from a submitted form, or the errors to show by block."""
    errors: dict[str, str] = {}
    options: dict[str, Any] = {}
    for block in ("from", "to"):
        raw = str(_state(view, block).get("value") or "").strip()
        try:
            options[block] = float(raw)
        except ValueError:
            errors[block] = "A number of seconds, like 2."
    if not errors and options["to"] <= options["from"]:
        errors["to"] = "To must be after From."
    selected = _state(view, "replace").get("selected_option") or {}
    replace = selected.get("value") if isinstance(selected, dict) else None
    if replace in dict(REPLACE):
        options["replace"] = replace
    if errors:
        return errors
    return str(_state(view, "prompt").get("value") or "").strip(), options

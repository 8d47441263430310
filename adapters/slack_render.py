"""StatusCard -> Block Kit, and the modals the Slack adapter opens.

Pure functions only: no I/O, so every rendering is tested by looking at the
dicts. Slack's limits are enforced here (section text 3000 chars, context 10
elements, fallback text 4000) so a long prompt never turns into an
`invalid_blocks` error in the middle of a job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot import ports
from bot.catalog import ENDPOINTS
from bot.commands.services import MAX_JOB_ID
from bot.ports import ACTION_KINDS, Action, ActionKind, StatusCard

Block = dict[str, Any]

ACTION_PREFIX = "ltx_"
# Buttons whose action needs a new prompt first: they open PROMPT_MODAL.
PROMPTED_ACTIONS: frozenset[str] = frozenset({"extend", "continue"})

ANIMATE_MODAL = "ltx_animate_modal"
PROMPT_MODAL = "ltx_prompt_modal"

SECTION_MAX = 3000
MODAL_TITLE_MAX = 24
# chat.postEphemeral and response_url text: Slack advises at most 4,000 characters (past
# 40,000 it answers msg_too_long); longer notes are cut, never refused.
NOTE_MAX = 4000
CONTEXT_MAX_ELEMENTS = 10
FALLBACK_MAX = 4000
BAR_WIDTH = 12

TONE_ICON = {"info": "", "success": ":white_check_mark: ", "warning": ":warning: ",
             "error": ":x: "}

ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4")
DURATIONS = (2, 3, 4, 5, 6, 8, 10)


def escape(text: str) -> str:
    """Slack mrkdwn control characters; user text (prompts) must not become links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    return ports.progress_bar(fraction, width, "▓", "░")


def slack_date(when: datetime, fallback_prefix: str = "") -> str:
    """`<!date^…>`: every reader sees the time in their own time zone."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    unix = int(when.timestamp())
    fallback = when.astimezone(UTC).strftime("%H:%M UTC")
    return f"<!date^{unix}^{fallback_prefix}{{time}}|{fallback_prefix}{fallback}>"


def action_id(kind: str) -> str:
    return ACTION_PREFIX + kind


def parse_action(action_id_: str, value: str) -> tuple[ActionKind, int] | None:
    """(kind, job_id) from a button, or None when it is not ours.

    The value is the job id; the `ltx:job:<id>:<kind>` custom-id form is accepted
    too, so a button rendered from `Action.custom_id` keeps working.
    """
    if not action_id_.startswith(ACTION_PREFIX):
        return None
    kind = action_id_[len(ACTION_PREFIX):]
    if kind not in ACTION_KINDS:
        return None
    raw = value.strip()
    if raw.startswith("ltx:job:"):
        parts = raw.split(":")
        raw = parts[2] if len(parts) >= 3 else ""
    # ASCII digits only (isdigit() takes "²", which int() refuses), and no more than a
    # value of ours could hold: a larger number goes on to the core, which refuses it.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 100:
        return None
    return kind, int(raw)


def button(action: Action) -> Block:
    element: Block = {
        "type": "button",
        "action_id": action_id(action.kind),
        "text": {"type": "plain_text", "text": clip(action.label, 75), "emoji": True},
        "value": str(action.job_id),
    }
    if action.kind in ("delete", "moddelete"):
        element["style"] = "danger"
        element["confirm"] = {
            "title": {"type": "plain_text", "text": "Delete this video?"},
            "text": {"type": "plain_text", "text": "The video and its buttons are removed."},
            "confirm": {"type": "plain_text", "text": "Delete"},
            "deny": {"type": "plain_text", "text": "Keep"},
            "style": "danger",
        }
    elif action.kind in ("cancel", "modblock"):
        element["style"] = "danger"
    elif action.kind == "reroll":
        element["style"] = "primary"
    return element


def actions_block(actions: list[Action], block_id: str | None = None) -> Block | None:
    if not actions:
        return None
    # One button per kind: Slack refuses two elements with the same action_id in a block.
    seen: set[str] = set()
    elements = []
    for action in actions:
        if action.kind not in seen:
            seen.add(action.kind)
            elements.append(button(action))
    block: Block = {"type": "actions", "elements": elements[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def context_lines(card: StatusCard, now: datetime | None = None) -> list[str]:
    """The card's lines, then each live fact once: the bar for progress, and the ETA as a
    `<!date>` every reader sees in their own time zone."""
    now = now or datetime.now(UTC)
    lines = [escape(line) for line in card.lines if line]
    for fact in card.facts(now):
        if fact.kind == "progress" and card.progress is not None:
            lines.append("`" + progress_bar(card.progress) + "`")
        elif fact.kind == "eta" and card.eta is not None:
            lines.append(f"{fact.label} {slack_date(card.eta)}")
        else:
            lines.append(escape(fact.plain))
    return lines


def card_blocks(card: StatusCard, now: datetime | None = None) -> list[Block]:
    """The whole card: title section, context lines, link, buttons."""
    title = TONE_ICON.get(card.tone, "") + "*" + escape(card.title) + "*"
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(title, SECTION_MAX)}}
    ]
    lines = context_lines(card, now)
    if lines:
        # The last context element carries any overflow, so nothing is silently dropped.
        head = lines[: CONTEXT_MAX_ELEMENTS - 1]
        rest = lines[CONTEXT_MAX_ELEMENTS - 1:]
        if rest:
            head.append(" · ".join(rest))
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": clip(line, SECTION_MAX)} for line in head]})
    if card.link:
        link = escape(card.link)
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": clip(f"<{link}|Open the video>", SECTION_MAX)}})
    buttons = actions_block(card.actions, block_id=f"ltx_job_{card.job_id}" if card.job_id else None)
    if buttons:
        blocks.append(buttons)
    return blocks


def note_text(text: str) -> str:
    """A private note as Slack takes it: at most NOTE_MAX characters."""
    return clip(text, NOTE_MAX)


def fallback_text(card: StatusCard) -> str:
    """Notification and screen-reader text; Slack shows it where blocks can't render."""
    return clip(card.text(), FALLBACK_MAX)


def summary_text(card: StatusCard) -> str:
    """The `initial_comment` of an uploaded video: title and lines, plain mrkdwn."""
    parts = ["*" + escape(card.title) + "*", *(escape(line) for line in card.lines if line)]
    if card.link:
        parts.append(escape(card.link))
    return clip("\n".join(parts), FALLBACK_MAX)


# ---------------------------------------------------------------- modals


@dataclass
class ModalMeta:
    """What a modal submission needs to know about where it came from (private_metadata)."""

    channel: str
    thread: str | None = None
    files: list[str] = field(default_factory=list)
    team: str | None = None
    kind: str | None = None  # PROMPT_MODAL: the button's action
    job_id: int | None = None

    def dump(self) -> str:
        data: dict[str, Any] = {"c": self.channel}
        if self.thread:
            data["t"] = self.thread
        if self.files:
            data["f"] = self.files
        if self.team:
            data["w"] = self.team
        if self.kind:
            data["k"] = self.kind
        if self.job_id is not None:
            data["j"] = self.job_id
        text = json.dumps(data, separators=(",", ":"))
        # Slack caps private_metadata at 3000 chars; only the file list can grow that long.
        while len(text) > 3000 and data.get("f"):
            data["f"] = data["f"][:-1]
            text = json.dumps(data, separators=(",", ":"))
        return text

    @classmethod
    def load(cls, raw: object) -> ModalMeta | None:
        """What `dump` wrote, or None for anything else (a field of the wrong type included:
        it would reach Slack's API or the core as a channel, thread or job id)."""
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        files, job, kind = data.get("f", []), data.get("j"), data.get("k")
        if not (all(isinstance(data.get(k), str | None) for k in ("t", "w"))
                and isinstance(files, list) and all(isinstance(f, str) for f in files)
                and (kind is None or kind in ACTION_KINDS)
                and (job is None or (type(job) is int and 0 < job <= MAX_JOB_ID))):
            return None
        return cls(channel=data["c"], thread=data.get("t"), files=files, team=data.get("w"),
                   kind=kind, job_id=job)


def _option(text: str, value: str) -> Block:
    return {"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value}


def animate_modal(meta: ModalMeta, *, with_file_input: bool, source_note: str | None = None
                  ) -> Block:
    """The "Animate with LTX" form: prompt, model, duration, aspect, audio (+ a file picker)."""
    models = [_option(f"{e.title}", e.key) for e in ENDPOINTS if not e.deprecated]
    blocks: list[Block] = []
    if source_note:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": clip(escape(source_note), SECTION_MAX)}]})
    if with_file_input:
        blocks.append({
            "type": "input", "block_id": "files", "optional": True,
            "label": {"type": "plain_text", "text": "Image, clip or sound"},
            "hint": {"type": "plain_text",
                     "text": "One image animates it; several images are keyframes; a clip is "
                             "extended; a sound file (2 to 20 s) sets the video to it."},
            "element": {"type": "file_input", "action_id": "files", "max_files": 8,
                        "filetypes": ["png", "jpg", "jpeg", "webp", "gif", "mp4", "mov", "webm",
                                      "mp3", "wav", "m4a", "aac", "ogg", "opus", "flac"]},
        })
    blocks += [
        {"type": "input", "block_id": "prompt",
         "label": {"type": "plain_text", "text": "Prompt"},
         "element": {"type": "plain_text_input", "action_id": "prompt", "multiline": True,
                     "max_length": 2000,
                     "placeholder": {"type": "plain_text", "text": "the cat jumps onto the sofa"}}},
        {"type": "input", "block_id": "model", "optional": True,
         "label": {"type": "plain_text", "text": "Model"},
         "element": {"type": "static_select", "action_id": "model", "options": models,
                     "placeholder": {"type": "plain_text", "text": "Chosen for the inputs"}}},
        {"type": "input", "block_id": "seconds", "optional": True,
         "label": {"type": "plain_text", "text": "Duration"},
         "element": {"type": "static_select", "action_id": "seconds",
                     "options": [_option(f"{d} s", str(d)) for d in DURATIONS],
                     "placeholder": {"type": "plain_text", "text": "Model default"}}},
        {"type": "input", "block_id": "aspect", "optional": True,
         "label": {"type": "plain_text", "text": "Aspect ratio"},
         "element": {"type": "static_select", "action_id": "aspect",
                     "options": [_option(a, a) for a in ASPECTS],
                     "placeholder": {"type": "plain_text", "text": "Model default"}}},
        {"type": "input", "block_id": "audio", "optional": True,
         "label": {"type": "plain_text", "text": "Sound"},
         "element": {"type": "checkboxes", "action_id": "audio",
                     "options": [_option("Generate audio (LTX-2 only)", "audio")]}},
    ]
    return {
        "type": "modal", "callback_id": ANIMATE_MODAL,
        "title": {"type": "plain_text", "text": "Animate with LTX"},
        "submit": {"type": "plain_text", "text": "Animate"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": meta.dump(),
        "blocks": blocks,
    }


def prompt_modal(kind: str, job_id: int, meta: ModalMeta) -> Block:
    """Extend/Continue ask for the next prompt before anything runs."""
    verb = "Extend" if kind == "extend" else "Continue"
    return {
        "type": "modal", "callback_id": PROMPT_MODAL,
        "title": {"type": "plain_text", "text": clip(f"{verb} job #{job_id}", MODAL_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": verb},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": meta.dump(),
        "blocks": [{
            "type": "input", "block_id": "prompt",
            "label": {"type": "plain_text", "text": "What happens next?"},
            "element": {"type": "plain_text_input", "action_id": "prompt", "multiline": True,
                        "max_length": 2000},
        }],
    }


@dataclass
class AnimateForm:
    prompt: str = ""
    model: str | None = None
    seconds: str | None = None
    aspect: str | None = None
    audio: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)  # file objects or {"id": ...}

    def flags(self) -> str:
        """The form as the same `--flag value` text a mention would carry."""
        parts = []
        if self.model:
            parts.append(f"--model {self.model}")
        if self.seconds:
            parts.append(f"--seconds {self.seconds}")
        if self.aspect:
            parts.append(f"--aspect {self.aspect}")
        if self.audio:
            parts.append("--audio")
        return " ".join(parts)

    def text(self) -> str:
        return " ".join(p for p in (self.prompt.strip(), self.flags()) if p)


def _value(values: dict[str, Any], block: str) -> dict[str, Any]:
    state = values.get(block) or {}
    entry = state.get(block)
    if entry is None and state:
        entry = next(iter(state.values()))
    return entry if isinstance(entry, dict) else {}


def read_form(view: dict[str, Any]) -> AnimateForm:
    values = (view.get("state") or {}).get("values") or {}
    form = AnimateForm()
    form.prompt = str(_value(values, "prompt").get("value") or "")
    for name in ("model", "seconds", "aspect"):
        selected = _value(values, name).get("selected_option") or {}
        if selected.get("value"):
            setattr(form, name, str(selected["value"]))
    form.audio = bool(_value(values, "audio").get("selected_options"))
    for f in _value(values, "files").get("files") or []:
        if isinstance(f, dict) and f.get("id"):
            form.files.append(f)
        elif isinstance(f, str):
            form.files.append({"id": f})
    return form

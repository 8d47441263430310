"""The console's line parsing and its ChatPort, without the core."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from adapters.console import CONSOLE_PLACE, ConsolePort, banner, console_user, parse_line
from adapters.console_lines import is_leave
from adapters.console_prompt import CommandCompleter, history_path, open_history
from adapters.console_render import TerminalRenderer, status_line
from bot import grammar
from bot.config import Settings
from bot.errors import UserError
from bot.ports import Action, StatusCard


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {"media": {"output_dir": str(tmp_path / "outputs")}, "console": {"admin_users": ["root"],
                                                                      "upload_limit_bytes": 12345}}
    )


# ---------------------------------------------------------------- lines


def test_plain_text_is_video() -> None:
    parsed = parse_line("a paper boat on a stormy sea --seconds 4\n")
    assert parsed is not None
    assert (parsed.command, parsed.text, parsed.attachments) == (
        "video", "a paper boat on a stormy sea --seconds 4", [])


def test_blank_and_comment_lines_are_skipped() -> None:
    assert parse_line("   \n") is None
    assert parse_line("# a comment in a script\n") is None


def test_slash_commands_keep_their_text() -> None:
    parsed = parse_line("/CANCEL 3")  # the card's Cancel button, typed
    assert parsed is not None and (parsed.command, parsed.options) == (
        "action", {"action": "cancel", "job_id": 3})
    parsed = parse_line("/admin grant console:bob 50")
    assert parsed is not None and (parsed.command, parsed.text) == ("admin", "grant console:bob 50")
    parsed = parse_line("/quota")
    assert parsed is not None and (parsed.command, parsed.text) == ("quota", "")


def test_unknown_command_is_a_user_error() -> None:
    with pytest.raises(UserError, match="/frobnicate"):
        parse_line("/frobnicate now")


def test_local_files_become_absolute_attachments(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(b"x" * 10)
    (tmp_path / "my clip.mp4").write_bytes(b"y" * 20)
    parsed = parse_line('/extend --video "my clip.mp4" the cat\'s boat --seconds 2', cwd=tmp_path)
    assert parsed is not None
    assert parsed.command == "extend"
    assert parsed.text == "the cat's boat --seconds 2"
    [att] = parsed.attachments
    assert att.url == str(tmp_path / "my clip.mp4") and att.kind == "video" and att.size == 20
    parsed = parse_line("/video --image=cat.png the cat yawns", cwd=tmp_path)
    assert parsed is not None and parsed.attachments[0].url == str(tmp_path / "cat.png")
    assert parsed.attachments[0].kind == "image" and parsed.text == "the cat yawns"


def test_keyframes_keep_image_order_and_urls(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "b.png").write_bytes(b"b")
    parsed = parse_line(
        "/keyframes --image a.png a flower --image https://example.com/x/c.png?sig=1 opens "
        "--img b.png --at 0,40,80",
        cwd=tmp_path,
    )
    assert parsed is not None
    assert [a.url for a in parsed.attachments] == [
        str(tmp_path / "a.png"), "https://example.com/x/c.png?sig=1", str(tmp_path / "b.png")]
    assert parsed.attachments[1].filename == "c.png"
    assert parsed.text == "a flower opens --at 0,40,80"


def test_text_without_media_flags_reads_back_the_same(tmp_path: Path) -> None:
    # The console re-emits the text it keeps; the grammar must see exactly what was typed.
    line = 'a "quoted --seed 5" prompt --negative "blurry, text" it\'s fine --seconds 3'
    parsed = parse_line(line, cwd=tmp_path)
    assert parsed is not None
    assert grammar.parse("video", parsed.text) == grammar.parse("video", line)


def test_missing_file_and_missing_value_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no file at nope\.png"):
        parse_line("/video --image nope.png a cat", cwd=tmp_path)
    with pytest.raises(UserError, match="needs a file or a URL"):
        parse_line("/video a cat --image", cwd=tmp_path)


def test_buttons_as_commands() -> None:
    parsed = parse_line("/reroll 9")
    assert parsed is not None
    assert (parsed.command, parsed.options) == ("action", {"action": "reroll", "job_id": 9})
    parsed = parse_line("/extend #9 the boat sails on")
    assert parsed is not None
    assert (parsed.command, parsed.text, parsed.options) == (
        "action", "the boat sails on", {"action": "extend", "job_id": 9})
    parsed = parse_line("/continue #4")
    assert parsed is not None and parsed.options == {"action": "continue", "job_id": 4}
    with pytest.raises(UserError, match="Which job"):
        parse_line("/delete")


def test_extend_with_a_file_is_a_new_job(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"v")
    parsed = parse_line("/extend --video clip.mp4 9 dancers", cwd=tmp_path)
    assert parsed is not None and parsed.command == "extend" and parsed.text == "9 dancers"


# ---------------------------------------------------------------- the port


def card(title: str = "Job #3", **kw: object) -> StatusCard:
    values: dict[str, object] = {"job_id": 3, "state": "running", "stage": "Generating",
                                 "lines": ["a line"]}
    values.update(kw)
    return StatusCard(title=title, **values)  # type: ignore[arg-type]


def test_identity_and_admin(settings: Settings) -> None:
    assert console_user("root", settings).is_admin
    user = console_user("ann", settings)
    assert not user.is_admin and user.key == "console:ann" and user.platform == "console"


def test_status_line_shows_stage_percent_positions_eta() -> None:
    now = datetime.now(UTC)
    line = status_line(card(progress=0.4, eta=now + timedelta(seconds=75),
                            elapsed_since=now - timedelta(seconds=5)))
    assert line.startswith("Job #3 · Generating · 40% · Elapsed 5s · ETA 1m 1")
    assert status_line(card(stage="In fal's queue", fal_position=1)) == (
        "Job #3 · In fal's queue · fal queue #1")
    assert status_line(card(stage="Waiting", local_position=2)) == "Job #3 · Waiting · Place in line #2"
    assert status_line(card(stage=None)) == "Job #3"


async def test_plain_output_prints_changes_once(settings: Settings) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=False)
    ref = await port.post(CONSOLE_PLACE, card(progress=0.1))
    await port.edit(ref, card(progress=0.1))
    await port.edit(ref, card(progress=0.5))
    await port.edit(ref, card("Job #3 done", final=True, lines=["Done in 3s"],
                              actions=[Action("reroll", 3, "Re-roll")]))
    lines = out.getvalue().splitlines()
    assert lines == ["Job #3 · Generating · 10%", "Job #3 · Generating · 50%", "Job #3 done",
                     "Done in 3s", "Re-roll: /reroll 3"]
    assert port.messages[ref.id].text == "Job #3 done\nDone in 3s\nRe-roll: /reroll 3"
    assert port.messages[ref.id].buttons == ["ltx:job:3:reroll"]


def file_state(path: str | Path) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


async def test_send_video_copies_into_outputs(settings: Settings, tmp_path: Path) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=False)
    src = tmp_path / "result.mp4"
    src.write_bytes(b"video bytes")
    ref = await port.send_video(CONSOLE_PLACE, src, card("Done", final=True))
    ref2 = await port.send_video(CONSOLE_PLACE, src, card("Done", final=True))
    saved = [line.removeprefix("saved: ") for line in out.getvalue().splitlines() if line.startswith("saved: ")]
    assert len(saved) == 2 and saved[0] != saved[1]
    assert [file_state(p) for p in saved] == [b"video bytes", b"video bytes"]
    assert {str(Path(p).parent) for p in saved} == {str((tmp_path / "outputs").resolve())}
    assert file_state(src) == b"video bytes"  # the runner owns its file: copied, not moved
    await port.delete(ref)
    assert [file_state(p) for p in saved] == [None, b"video bytes"]
    assert port.messages[ref.id].deleted and not port.messages[ref2.id].deleted


async def test_tell_and_upload_limit(settings: Settings) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=False)
    user = console_user("ann", settings)
    await port.tell(user, CONSOLE_PLACE, "You have 3 credits left.")
    assert out.getvalue() == "You have 3 credits left.\n"
    assert list(port.notes["console:ann"]) == ["You have 3 credits left."]
    assert port.upload_limit(CONSOLE_PLACE) == 12345


async def test_terminal_renderer_keeps_live_cards_for_the_prompt(settings: Settings) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=True)
    assert isinstance(port.renderer, TerminalRenderer)
    ref = await port.post(CONSOLE_PLACE, card(progress=0.25, fal_position=None))
    await port.edit(ref, card(progress=0.75))
    # Printed: the title once. The live line is drawn by the prompt, above the input line.
    assert out.getvalue() == "Job #3\n"
    [line] = port.renderer.status_lines(width=60)
    assert line == "#3 Generating ━━━━━━━━━━━━━━━───── 75%"
    assert port.renderer.status_lines(width=20) == ["#3 Generating ━━━━…"]  # 19: never wraps
    await port.edit(ref, card("Job #3 finished [ok]", final=True))
    port.close()
    assert port.renderer.status_lines() == []
    # Markup characters in user text are printed as typed.
    assert out.getvalue().endswith("Job #3 finished [ok]\na line\n")


async def test_a_delivered_jobs_final_card_is_not_printed_again(settings: Settings, tmp_path: Path) -> None:
    out = io.StringIO()
    port = ConsolePort(settings, out, live=False)
    src = tmp_path / "result.mp4"
    src.write_bytes(b"video")
    status = await port.post(CONSOLE_PLACE, card(progress=0.5))
    await port.send_video(CONSOLE_PLACE, src, card("Summary of #3", final=True))
    await port.edit(status, card("Job #3 done", final=True, lines=["Done in 3s"]))
    printed = out.getvalue()
    assert "Summary of #3" in printed and "Done in 3s" not in printed
    assert port.messages[status.id].text == "Job #3 done\nDone in 3s"  # kept, not printed
    # Another job's ending without a video (failed, cancelled) is printed.
    await port.edit(status, card("Job #4 failed", job_id=4, final=True))
    assert "Job #4 failed" in out.getvalue()


# ---------------------------------------------------------------- command words


@pytest.mark.parametrize(
    ("line", "command", "text"),
    [("help", "help", ""), ("Quota", "quota", ""), ("jobs", "jobs", ""), ("/jobs", "jobs", ""),
     ("help me", "help", "me"), ("video", "video", ""), ("video of a cat", "video", "video of a cat"),
     ("extend --video clip.mp4 more", "extend", "more"), ("the jobs of cats", "video", "the jobs of cats")],
)
def test_command_words_as_mentions_read_them(line: str, command: str, text: str, tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"v")
    parsed = parse_line(line, cwd=tmp_path)
    assert parsed is not None and (parsed.command, parsed.text) == (command, text)


def test_button_and_leave_words() -> None:
    for line, options in (("reroll 9", {"action": "reroll", "job_id": 9}),
                          ("cancel #4", {"action": "cancel", "job_id": 4}),
                          ("delete 2", {"action": "delete", "job_id": 2}),
                          ("continue #5 on", {"action": "continue", "job_id": 5})):
        parsed = parse_line(line)
        assert parsed is not None and (parsed.command, parsed.options) == ("action", options)
    for line in ("exit", "quit", "/QUIT", " /exit "):
        assert is_leave(line)
    for line in ("exit through the gift shop", "a quiet exit", "/quiet"):
        assert not is_leave(line)
    with pytest.raises(UserError, match=r"type exit alone"):
        parse_line("exit through the gift shop")
    with pytest.raises(UserError, match=r"Which job\? e.g. /continue #12"):
        parse_line("continue the story")


def test_unknown_slash_command_suggests_the_nearest() -> None:
    with pytest.raises(UserError, match=r"^I don't know the command /vdeo\. Did you mean /video\?$"):
        parse_line("/vdeo a cat")
    with pytest.raises(UserError, match=r"Did you mean /reroll\?"):
        parse_line("/rerol 3")
    with pytest.raises(UserError, match=r"/zzz\. Type /help"):
        parse_line("/zzz")


# ---------------------------------------------------------------- completion and history


def completions(text: str) -> list[str]:
    document = Document(text, len(text))
    return [c.text for c in CommandCompleter().get_completions(document, CompleteEvent(completion_requested=True))]


def test_completion_of_commands_flags_models_choices_and_paths(tmp_path: Path) -> None:
    assert completions("/jo") == ["/jobs"]
    assert completions("quo") == ["quote", "quota"]
    assert completions("/re") == ["/retake", "/restyle", "/reroll", "/report"]
    assert completions("a clip --audio-f") == ["--audio-file"]
    assert completions("a cat --seco") == ["--seconds"]
    assert "--model" in completions("a cat --m")
    assert completions("a cat --model ltx-e") == ["ltx-extend"]
    assert completions("a cat --camera dolly_i") == ["dolly_in"]
    (tmp_path / "cat.png").write_bytes(b"x")
    assert completions(f"a cat --image {tmp_path}/ca") == ["t.png"]
    assert completions("a cat yawn") == []  # a prompt's words: nothing to offer


def test_history_file_is_per_user_and_private(tmp_path: Path) -> None:
    history = open_history(tmp_path, "ann/../x")
    path = history_path(tmp_path, "ann/../x")
    assert path.parent == tmp_path / "history" and path.name == "ann_.._x.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    history.append_string("/quota")
    assert "+/quota" in path.read_text()
    assert history_path(tmp_path, "bob") != path


@pytest.mark.parametrize(("backend", "words"), [
    ({"kind": "sim"}, "backend: SIMULATED videos (no fal key)"),
    # A standalone `ltx-bot sim` (or another fal-compatible server here) is not fal.
    ({"kind": "fal", "fal_queue_url": "http://127.0.0.1:9"},
     "backend: the fal-compatible server at http://127.0.0.1:9 (no fal key)"),
    ({"kind": "fal", "fal_key": "k"}, "backend: fal."),
])
def test_the_banner_names_what_makes_the_videos(backend: dict[str, str], words: str) -> None:
    settings = Settings.model_validate({"backend": backend})
    assert words in banner(settings, console_user("ann", settings), interactive=False)

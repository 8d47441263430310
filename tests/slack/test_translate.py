from __future__ import annotations

from adapters.slack_translate import (
    file_credential,
    media_command,
    mention_command,
    refusal,
    split_command,
    strip_mentions,
    to_attachment,
    to_user,
)
from bot.config import SlackSettings
from bot.ports import Attachment


def att(kind: str) -> Attachment:
    return Attachment(url="https://files.slack.com/x", kind=kind)  # type: ignore[arg-type]


def test_split_command() -> None:
    assert split_command("") == ("modal", "")
    assert split_command("  animate ") == ("modal", "")
    assert split_command("quota") == ("quota", "")
    assert split_command("Cancel 12") == ("cancel", "12")
    assert split_command("admin grant U1 100") == ("admin", "grant U1 100")
    assert split_command("quote a cat --seconds 4") == ("quote", "a cat --seconds 4")
    assert split_command("a cat jumps --seconds 4") == ("video", "a cat jumps --seconds 4")
    # only the first word is a sub-command
    assert split_command("the jobs of cats") == ("video", "the jobs of cats")
    assert split_command("/quota") == ("quota", "")
    assert split_command("keyframes a b") == ("keyframes", "a b")
    assert split_command("extend more") == ("extend", "more")


def test_strip_mentions_keeps_other_users() -> None:
    assert strip_mentions("<@UBOT> the cat <@U2> jumps", "UBOT") == "the cat <@U2> jumps"
    assert strip_mentions("<@UBOT|ltx>  hi", "UBOT") == "hi"
    assert strip_mentions("<@UBOT> hi", None) == "hi"


def test_media_command_routing() -> None:
    assert media_command("cat", [att("image")]) == ("video", "cat")
    assert media_command("cat", [att("image"), att("image")]).command == "keyframes"
    assert media_command("go on --extend --seconds 4", [att("video")]) == (
        "extend", "go on --extend --seconds 4")
    # --extend without a clip is left for the core to explain
    assert media_command("cat --extend", [att("image")]).command == "video"
    assert media_command("mix", [att("image"), att("video")]).command == "keyframes"
    assert mention_command("quota", []) == ("quota", "")
    # A named command wins over the files, as on Discord and in the console.
    assert mention_command("quota", [att("image")]) == ("quota", "")
    assert mention_command("extend more waves", [att("video")]) == ("extend", "more waves")
    assert mention_command("/video a and b", [att("image"), att("image")]) == ("video", "a and b")
    # Without a named command the files decide.
    assert mention_command("go on --extend", [att("video")]).command == "extend"
    assert mention_command("a and b", [att("image"), att("image")]).command == "keyframes"


def test_file_credential_only_for_slack_hosts() -> None:
    cred = file_credential("xoxb-1", "http://127.0.0.1:5555/api/")
    assert cred.header == "Authorization" and cred.value == "Bearer xoxb-1"
    assert cred.allows("files.slack.com") and cred.allows("slack.com")
    assert cred.allows("127.0.0.1")
    assert not cred.allows("evil.com") and not cred.allows("slack.com.evil.com")
    assert not cred.allows("localhost")
    assert "xoxb" not in repr(cred)  # the token never shows in logs of the object


def test_attachment_from_file_object() -> None:
    cred = file_credential("xoxb-1", None)
    a = to_attachment({"id": "F1", "name": "cat.png", "mimetype": "image/png", "size": 12,
                         "url_private_download": "https://files.slack.com/d/cat.png"}, cred)
    assert (a.url, a.filename, a.content_type, a.size, a.kind) == (
        "https://files.slack.com/d/cat.png", "cat.png", "image/png", 12, "image")
    assert a.credential is cred
    v = to_attachment({"id": "F2", "filetype": "mp4", "url_private_download": "u"}, cred)
    assert v.kind == "video"


def test_refusal_and_admins() -> None:
    open_ = SlackSettings()
    assert refusal(open_, "T1", "C1") is None
    only = SlackSettings(allowed_workspaces=["T9"], allowed_channels=["C9", "C8"])
    text = refusal(only, "T1", "C9")
    assert text is not None and "slack.allowed_workspaces" in text and "T1" in text
    text = refusal(only, "T9", "C1")
    assert text is not None and "<#C9>" in text and "<#C8>" in text
    assert refusal(only, "T9", "C8") is None
    admins = SlackSettings(admin_users=["U1", "slack:U2"])
    assert to_user("U1", "a", admins).is_admin
    assert to_user("U2", "b", admins).is_admin
    assert not to_user("U3", None, admins).is_admin
    assert to_user("U3", None, admins).name == "U3"

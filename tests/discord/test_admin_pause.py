"""/ltx-admin pause and resume on Discord, through the real core: a paused bot refuses
/video plainly before anything is fetched or charged, and resumes on /ltx-admin resume."""

from __future__ import annotations

from bot.config import Settings
from tests.discord.conftest import dispatch, png_bytes
from tests.discord.payloads import ADMIN_ID, USER_ID
from tests.discord.test_e2e import Live, _notes, live  # noqa: F401 (the fixture)


class Served(dict[str, tuple[bytes, str]]):
    """The fake's attachment files, noting which were served."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        super().__init__(files)
        self.served: list[str] = []

    def __getitem__(self, name: str) -> tuple[bytes, str]:
        self.served.append(name)
        return super().__getitem__(name)


async def test_admin_pause_refuses_video_and_resume_lifts_it(live: Live, settings: Settings) -> None:  # noqa: F811
    settings.discord.admin_users = [ADMIN_ID]
    dispatch(live.client, live.p.slash("ltx-admin", {"reason": "new model coming"}, sub="pause",
                                       user_id=ADMIN_ID, user_name="boss"))
    await live.fake.wait_until(lambda: any("paused everywhere" in n for n in _notes(live.fake)),
                               what="the admin's answer")
    [row] = await live.app.store.pauses()
    assert (row.kind, row.reason, row.by) == ("admin", "new model coming", "boss")

    image = live.p.attachment("cat.png", png_bytes((160, 96)), "image/png")
    live.fake.cdn = Served(live.fake.cdn)
    dispatch(live.client, live.p.slash("video", {"prompt": "the cat blinks"},
                                       attachments={"image": image}))
    refusal = "Video generation is paused by an admin: new model coming."
    await live.fake.wait_until(lambda: refusal in _notes(live.fake), what="the refusal")
    assert await live.app.store.list_jobs(f"discord:{USER_ID}") == []
    assert live.fake.cdn.served == []  # the attachment was never downloaded

    dispatch(live.client, live.p.slash("ltx-admin", {}, sub="resume", user_id=ADMIN_ID,
                                       user_name="boss"))
    await live.fake.wait_until(lambda: any("resumes" in n for n in _notes(live.fake)),
                               what="the resume answer")
    assert await live.app.store.pauses() == []


async def test_only_configured_admins_can_pause(live: Live, settings: Settings) -> None:  # noqa: F811
    settings.discord.admin_users = [ADMIN_ID]
    dispatch(live.client, live.p.slash("ltx-admin", {"reason": "mine"}, sub="pause"))
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="the refusal")
    assert "admin_users" in _notes(live.fake)[0]
    assert await live.app.store.pauses() == []

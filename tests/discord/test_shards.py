"""Discord shards: `[discord] shard_count`/`shard_ids` run one gateway connection per shard of
this process, each getting only its guilds' events (the fake gateway routes by Discord's rule,
guild_id >> 22 % shard_count), and `sync_commands = "auto"` syncs only where shard 0 runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.discord_bot import DiscordRunner, LtxShardedClient, build_client
from bot.config import ConfigError, Settings, load_settings
from tests.conftest import make_settings
from tests.discord.conftest import Recorder
from tests.discord.fake_api import FakeDiscord
from tests.discord.payloads import Payloads
from tests.discord.test_runner import TOKEN, FakeApp

# One guild on each shard of two: (id >> 22) % 2 is 0 and 1.
GUILDS = {0: 700000000000000001 & ~(1 << 22), 1: 700000000000000001 | (1 << 22)}
CHANNELS = {0: 710000000000000001, 1: 710000000000000002}


def sharded(tmp: Path, fake: FakeDiscord, shard_ids: list[int]) -> Settings:
    settings = make_settings(tmp)
    settings.discord.token = TOKEN  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    settings.discord.gateway_url = fake.gateway_url
    settings.discord.shard_count = 2
    settings.discord.shard_ids = shard_ids
    return settings


async def test_two_processes_each_get_their_shards_guilds_and_only_shard_0_syncs(
    fake: FakeDiscord, tmp_path: Path,
) -> None:
    assert {FakeDiscord.shard_of(g, 2) for g in GUILDS.values()} == {0, 1}
    pays = {s: Payloads(fake, guild_id=GUILDS[s], channel_id=CHANNELS[s]) for s in (0, 1)}
    for p in pays.values():
        fake.add_gateway_guild(p.guild_create())
    recorders = {s: Recorder() for s in (0, 1)}
    runners = {}
    try:
        for s in (0, 1):
            settings = sharded(tmp_path / str(s), fake, [s])
            client = build_client(settings, recorders[s])
            assert isinstance(client, LtxShardedClient) and client.shard_ids == [s]
            runners[s] = DiscordRunner(FakeApp(), settings, client=client)
            await runners[s].start()
        async with asyncio.timeout(20):
            for runner in runners.values():
                await runner.client.wait_until_ready()
        assert sorted(i["shard"] for i in fake.identified) == [[0, 2], [1, 2]]
        for s, runner in runners.items():
            assert [g.id for g in runner.client.guilds] == [GUILDS[s]]
        # Commands: synced once, by the process that runs shard 0.
        assert len(fake.calls_to("PUT", "/commands")) == 1
        assert runners[0].client.synced and not runners[1].client.synced
        # A mention in each guild reaches the process of that guild's shard, and only it.
        for s, p in pays.items():
            msg = p.message(content=f"<@{fake.bot_id}> waves on shard {s}", mentions=[fake.bot_id])
            assert await fake.send_event("MESSAGE_CREATE", msg, GUILDS[s]) == 1
        for s, recorder in recorders.items():
            inv = await recorder.next()
            assert f"shard {s}" in inv.text and inv.place.workspace == str(GUILDS[s])
        await asyncio.sleep(0.2)
        assert [len(r.invocations) for r in recorders.values()] == [1, 1]
    finally:
        for runner in runners.values():
            await runner.close()


def test_sync_commands_auto_true_false(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.discord.syncs_commands  # no shards: the one process syncs
    settings.discord.shard_count = 4
    settings.discord.shard_ids = [2, 3]
    assert not settings.discord.syncs_commands
    settings.discord.shard_ids = [0, 1]
    assert settings.discord.syncs_commands
    settings.discord.sync_commands = False
    assert not settings.discord.syncs_commands
    settings.discord.shard_ids = [3]
    settings.discord.sync_commands = True
    assert settings.discord.syncs_commands


@pytest.mark.parametrize(("table", "words"), [
    ("shard_ids = [0]", ["discord.shard_ids", "discord.shard_count"]),
    ("shard_count = 2\nshard_ids = [0, 2]", ["discord.shard_ids", "[2]", "discord.shard_count = 2"]),
    ("shard_count = 2\nshard_ids = [1, 1]", ["discord.shard_ids", "twice"]),
    ("shard_count = 0", ["shard_count"]),
    ('sync_commands = "sometimes"', ["sync_commands"]),
])
def test_bad_shard_settings_are_config_errors_naming_both(tmp_path: Path, table: str,
                                                         words: list[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[discord]\n{table}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    for word in words:
        assert word in str(err.value)


def test_check_config_names_this_process_shards(tmp_path: Path) -> None:
    from adapters.discord_plugin import describe

    settings = make_settings(tmp_path)
    settings.discord.token = TOKEN  # type: ignore[assignment]
    assert "syncs commands" in (describe(settings) or "")
    settings.discord.shard_count = 2
    settings.discord.shard_ids = [1]
    line = describe(settings) or ""
    assert "shards [1] of 2" in line and "does not sync commands" in line

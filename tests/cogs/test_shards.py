"""Several bot processes, each owning a range of Discord shards, over one database."""

from __future__ import annotations

import pytest

from bot.client import ShardedSplitshotBot, SplitshotBot, make_bot
from bot.resources import Resources
from bot.settings import Settings, SettingsError


def test_shard_settings_are_read_and_checked() -> None:
    settings = Settings.from_env({"SPLITSHOT_SHARD_IDS": "1, 0", "SPLITSHOT_SHARD_COUNT": "4"})
    assert settings.shard_ids == (0, 1) and settings.shard_count == 4
    assert Settings.from_env({}).shard_ids is None
    with pytest.raises(SettingsError, match="needs SPLITSHOT_SHARD_COUNT"):
        Settings.from_env({"SPLITSHOT_SHARD_IDS": "0"})
    with pytest.raises(SettingsError, match="Shard 4 does not exist"):
        Settings.from_env({"SPLITSHOT_SHARD_IDS": "0,4", "SPLITSHOT_SHARD_COUNT": "4"})
    with pytest.raises(SettingsError, match="shard numbers"):
        Settings.from_env({"SPLITSHOT_SHARD_IDS": "zero", "SPLITSHOT_SHARD_COUNT": "2"})


async def test_a_process_runs_only_its_shards(resources: Resources) -> None:
    plain = make_bot(resources, Settings.from_env({}))
    assert type(plain) is SplitshotBot
    settings = Settings.from_env({"SPLITSHOT_SHARD_IDS": "2,3", "SPLITSHOT_SHARD_COUNT": "4"})
    sharded = make_bot(resources, settings)
    try:
        assert isinstance(sharded, ShardedSplitshotBot)
        assert sharded.shard_ids == [2, 3] and sharded.shard_count == 4
        # The same cogs and engine: nothing about a comparison lives in one process's memory.
        assert sharded.resources is resources and sharded.cog_names == plain.cog_names
        # What a restart may clear of its earlier run's admission tickets: its own range only.
        assert sharded.admission.owner == "shards 2,3 of 4"
        assert plain.admission.owner == "unsharded"
    finally:
        # Never connected: only the plain client has anything to close before login.
        await plain.close()

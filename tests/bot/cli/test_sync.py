"""`splitshot sync`: the one way the commands are published globally."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import sync
from bot.cli.main import main
from bot.errors import SplitshotError
from bot.settings import Settings


@pytest.fixture
def with_token(tmp_path: Path) -> Settings:
    return Settings(discord_token="a-token", db_path=tmp_path / "never-created.db")


class FakePublish:
    """Stands in for logging in to Discord: records where it was asked to sync."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.calls: list[int | None] = []

    async def __call__(self, settings: Settings, *, guild_id: int | None) -> int:
        self.calls.append(guild_id)
        if self.error is not None:
            raise SplitshotError(self.error)
        return 7


def test_without_a_token_it_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sync"], settings=Settings(db_path=tmp_path / "x.db"))

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("splitshot sync: DISCORD_TOKEN is not set")
    assert not (tmp_path / "x.db").exists(), "nothing is opened without a token"


@pytest.mark.parametrize(
    ("guild", "said"),
    [
        (None, "Synced 7 commands globally; they can take up to an hour"),
        (42, "Synced 7 commands to the server 42; they show there now."),
    ],
)
def test_it_syncs_globally_or_to_one_server(
    with_token: Settings, capsys: pytest.CaptureFixture[str], guild: int | None, said: str
) -> None:
    publish = FakePublish()
    args = argparse.Namespace(settings=with_token, guild=guild)

    code = sync.run(args, publish=publish)

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert publish.calls == [guild]
    assert out.startswith(said) and out.count("\n") == 1


def test_a_refused_sync_exits_1_with_discords_reason(
    with_token: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    publish = FakePublish(error="Discord rejected DISCORD_TOKEN: copy the bot token again.")
    args = argparse.Namespace(settings=with_token, guild=None)

    code = sync.run(args, publish=publish)

    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == "splitshot sync: Discord rejected DISCORD_TOKEN: copy the bot token again.\n"


def test_the_sub_command_is_registered_with_its_guild_option() -> None:
    from bot.cli.main import build_parser

    args = build_parser().parse_args(["sync", "--guild", "123"])
    assert args.func is sync.run and args.guild == 123

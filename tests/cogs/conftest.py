"""The Discord layer end to end: SimCord's simulated Discord, the real bot, real SQLite.

Providers are faked by a small adapter handed to the registry; it draws real PNGs with Pillow
and can be told, per model, to refuse, fail or take a while (in SimCord's virtual time).

SimCord waits up to ``settle_timeout`` for the bot's runnable work after every action, and lets
any timer due within that window fire in real time. The window is wide here (a loaded CI
machine composing images must not time out), so the waits a test steers with
``env.advance_time()`` — the fake's latency and the progress interval — are declared to SimCord
as external waits, which only virtual time resumes, whatever the window.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import discord
import httpx
import pytest
import pytest_asyncio
import simcord
from PIL import Image

from bot.catalog import load_catalog
from bot.client import SplitshotBot
from bot.comparisons.service import ComparisonService
from bot.credits.ledger import Ledger, utc_now
from bot.db import Database
from bot.resources import Resources
from bot.settings import Settings
from providers.base import ImageRequest, ImageResult, Refused, Target, Unavailable
from providers.registry import Registry
from tests.pg import fetch

#: long enough for the interaction-expiry test (15 min); tests never wait for it in real time
MODEL_TIMEOUT = 3600.0
#: progress frames are due every 10 s of virtual time (see VirtualSleep)
PROGRESS_INTERVAL = 10.0
#: how long SimCord waits for runnable bot work before failing a test (its default is 5 s)
SETTLE_TIMEOUT = 30.0
PANEL_COLOURS = {"gpt-image-2": (220, 60, 60), "nano-banana-pro": (60, 200, 90)}


@dataclass(slots=True)
class Behaviour:
    """What the fake does for one model."""

    delay: float = 0.0
    refuse: str | None = None
    fail: str | None = None


@dataclass(slots=True)
class VirtualSleep:
    """``asyncio.sleep`` that only ``env.advance_time()`` ends, once the world has started.

    Handed to the bot (its progress interval) and used by the fake adapter (its latency).
    """

    env: simcord.Env | None = None

    async def __call__(self, seconds: float) -> None:
        if self.env is None:
            await asyncio.sleep(seconds)
        else:
            await self.env.external_wait(asyncio.sleep(seconds), reason="virtual-time wait")


@dataclass(slots=True)
class FakeAdapter:
    """A providers.base.Adapter serving every model with a solid-colour PNG."""

    name: str = "fake"
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    calls: list[tuple[str, ImageRequest]] = field(default_factory=list)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        self.calls.append((target.model_id, request))
        how = self.behaviour.get(target.model_id, Behaviour())
        if how.delay:
            await self.sleep(how.delay)
        if how.refuse:
            raise Refused(how.refuse, adapter=self.name)
        if how.fail:
            raise Unavailable(how.fail, adapter=self.name)
        w_ratio, _, h_ratio = request.aspect.partition(":")
        width, height = 240, round(240 * int(h_ratio) / int(w_ratio))
        image = Image.new("RGB", (width, height), PANEL_COLOURS.get(target.model_id, (90, 90, 200)))
        out = io.BytesIO()
        image.save(out, "PNG")
        return ImageResult(
            image=out.getvalue(),
            mime_type="image/png",
            width=width,
            height=height,
            latency_s=how.delay,
            adapter=self.name,
            upstream_model=target.upstream_id,
        )


@pytest.fixture
def virtual_sleep() -> VirtualSleep:
    return VirtualSleep()


@pytest.fixture
def fake(virtual_sleep: VirtualSleep) -> FakeAdapter:
    return FakeAdapter(sleep=virtual_sleep)


@pytest.fixture
def ledger_clock() -> Callable[[], datetime]:
    """The ledger's clock: the real one. A test that lets SimCord's time age the holds
    parametrizes it as ``discord.utils.utcnow``, which follows SimCord's clock in bot code."""
    return utc_now


@pytest_asyncio.fixture
async def resources(
    tmp_path: Path, fake: FakeAdapter, ledger_clock: Callable[[], datetime]
) -> AsyncIterator[Resources]:
    settings = Settings(db_path=tmp_path / "splitshot.db", demo_mode=False)
    catalog = load_catalog()
    registry = Registry({"openai": fake, "gemini": fake, "fal": fake})
    service = ComparisonService(catalog, registry, model_timeout_s=MODEL_TIMEOUT, allow_demo=False)
    db = await Database.open(settings.db_path)

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected HTTP call to {request.url}")

    http = httpx.AsyncClient(transport=httpx.MockTransport(no_network))
    try:
        yield Resources(
            settings, catalog, http, registry, service, db, Ledger(db, clock=ledger_clock)
        )
    finally:
        await http.aclose()
        await db.close()


@pytest_asyncio.fixture
async def simcord_bot(
    resources: Resources, virtual_sleep: VirtualSleep
) -> AsyncIterator[SplitshotBot]:
    # time.monotonic is looked up at each call: SimCord swaps in its virtual clock.
    bot = SplitshotBot(
        resources,
        # SimCord refuses commands that were never synced; a real start does not sync globally.
        sync_commands="global",
        clock=lambda: time.monotonic(),
        sleep=virtual_sleep,
        progress_interval=PROGRESS_INTERVAL,
    )
    yield bot


@dataclass(slots=True)
class World:
    """A server with a channel, two members, a moderator and a bot account."""

    env: simcord.Env
    bot: SplitshotBot
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    audit: simcord.ChannelHandle
    member: simcord.MemberActor
    other: simcord.MemberActor
    moderator: simcord.MemberActor
    robot: simcord.MemberActor
    mod_role: simcord.RoleHandle

    async def balance(self, actor: simcord.MemberActor) -> int:
        return await self.bot.ledger.balance(self.guild.id, actor.id)

    async def ledger_rows(self, actor: simcord.MemberActor) -> list[tuple[str, int]]:
        assert self.bot.db is not None
        rows = await fetch(
            self.bot.db,
            "SELECT kind, delta FROM ledger WHERE guild_id = ? AND user_id = ? ORDER BY id",
            self.guild.id,
            actor.id,
        )
        return [(kind, delta) for kind, delta in rows]

    def requests(self, method: str, suffix: str) -> list[simcord.HttpLogEntry]:
        return [r for r in self.env.http_requests if r.method == method and r.path.endswith(suffix)]

    def private_answer(self, res: simcord.InteractionResult) -> str:
        """The text of a refusal: private, never a captured error, never left public.

        Refused before the acknowledgement it is the ephemeral response itself; refused after a
        public "thinking" message, that message is deleted and the answer follows privately.
        """
        assert self.env.errors == [], "an expected refusal must not reach the error handler"
        if res.response is not None:
            assert res.response.ephemeral, "the refusal was public"
            return res.response.content
        # The response is None: the public "thinking" message is gone.
        (answer,) = res.followups
        assert answer.ephemeral, "the refusal was public"
        return answer.content


@pytest.fixture
def world(
    simcord_env: simcord.Env, simcord_bot: SplitshotBot, virtual_sleep: VirtualSleep
) -> World:
    env = simcord_env
    env.settle_timeout = SETTLE_TIMEOUT
    virtual_sleep.env = env
    guild = env.create_guild("Test server")
    channel = guild.create_text_channel("compare")
    audit = guild.create_text_channel("audit")
    mod_role = guild.create_role("Moderators", permissions=discord.Permissions(manage_guild=True))
    return World(
        env=env,
        bot=simcord_bot,
        guild=guild,
        channel=channel,
        audit=audit,
        member=guild.add_member(env.create_user("alice")),
        other=guild.add_member(env.create_user("bob")),
        moderator=guild.add_member(env.create_user("mod"), roles=[mod_role]),
        robot=guild.add_member(env.create_user("robot", bot=True)),
        mod_role=mod_role,
    )


def assert_refused_quietly(env: simcord.Env) -> None:
    """A refusal is an ordinary private reply: nothing reaches the error handler or SimCord's log."""
    assert env.errors == [], f"a refusal was recorded as an error: {env.errors!r}"

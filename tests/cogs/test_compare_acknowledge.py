"""/compare answers Discord within its 3 seconds whatever is slow behind it.

Regression: the reference download (up to 2 s), its Pillow check and the reserve (a write
with a 5 s busy timeout) used to run before ``defer``, so a large attachment or a busy
database showed members "The application did not respond". The claim of the member's slot in
the database, a write too, waits behind the acknowledgement as well.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import threading

import pytest
from PIL import Image

from tests.cogs.conftest import World

PROMPT = "A lighthouse keeper at dusk, wind in her hair, 85mm portrait"
DOWNLOAD_SECONDS = 5.0
LOCK_SECONDS = 4.0


def callback_types(w: World) -> list[int]:
    return [c.json["type"] for c in w.requests("POST", "/callback")]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.slow
async def test_a_slow_reference_and_a_locked_database_are_acknowledged_first(world: World) -> None:
    w = world
    cog = w.bot.get_cog("CompareCog")
    assert cog is not None
    real_read = cog.read_reference  # type: ignore[attr-defined]

    async def slow_read(attachment: object) -> object:
        # Discord's CDN taking its time, in simulated time.
        await w.env.external_wait(asyncio.sleep(DOWNLOAD_SECONDS), reason="a slow download")
        return await real_read(attachment)

    cog.read_reference = slow_read  # type: ignore[attr-defined]
    # Another process holds the database's write lock (for real, not simulated) for a while
    # from when the member sends /compare: the claim of their slot, the first write, waits.
    locker = sqlite3.connect(w.bot.db.path, timeout=0, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    unlock = threading.Timer(LOCK_SECONDS, locker.rollback)
    # The first write is the claim of the member's slot: record what had happened by then.
    store = w.bot.admission.store
    claim = store.claim
    at_claim: list[tuple[list[int], bool]] = []

    async def claim_recording(request: object) -> object:
        at_claim.append((callback_types(w), locker.in_transaction))
        return await claim(request)  # type: ignore[arg-type]

    store.claim = claim_recording  # type: ignore[method-assign]
    unlock.start()
    try:
        res = await w.member.slash(w.channel, "compare", prompt=PROMPT, reference=("me.png", png()))
        # Acknowledged while the database was still locked and the download not even started.
        assert callback_types(w) == [5]
        assert res.acknowledged and not res.response.embeds
        assert at_claim == [([5], True)], "acknowledged first, then waited for the lock"
        # Read behind the claim on the one connection: it returns once the lock is gone.
        assert await w.ledger_rows(w.member) == [], "nothing spent before the slow steps"

        await w.env.advance_time(DOWNLOAD_SECONDS + 1)
        for _ in range(200):  # the download ends in simulated time, then the reserve and the rest
            if res.response is not None and res.response.attachments:
                break
            await asyncio.sleep(0.05)
            await w.env.settle()
    finally:
        unlock.cancel()
        unlock.join()
        locker.close()
    assert res.response is not None and res.response.attachments
    assert res.response.embeds[0].title == "GPT-Image 2 vs Nano Banana Pro — Portrait"
    assert await w.ledger_rows(w.member) == [("starter", 60), ("spend", -30)]
    assert await w.bot.ledger.audit() == []

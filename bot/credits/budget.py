"""The operator's budget: provider spend per server and per UTC day, price floors, and a cap on
comparisons running at once.

Servers set their own prices, starter grants and allowances, so without this one server could
make every comparison free and spend the operator's provider account without limit. Spend is
counted in the catalog's credits per image — what a model costs the operator — never in what a
server charges its members, and demo stand-ins cost nothing. A comparison is admitted (or
refused, with nothing charged) in one ``BEGIN IMMEDIATE`` transaction (on PostgreSQL, one
transaction under an advisory lock shared by every process), so two shards on the same database
cannot both take the last of a budget.

Longer than the ~400-line guide on purpose: admission, settlement, the price floor and the spend report share one table and its SQL on both backends.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.credits.accounts import iso
from bot.credits.rules import OperatorLimits, credits_text
from bot.errors import SplitshotError

if TYPE_CHECKING:
    from bot.catalog import Catalog, Model
    from bot.comparisons.plan import Plan
    from bot.db import AnyDatabase
    from bot.db.postgres import PgConnection
    from providers.base import Quality

log = logging.getLogger(__name__)

#: a comparison still 'running' after this long crashed; it no longer takes a running slot
DEFAULT_RUNNING_WINDOW = timedelta(minutes=30)
RESETS = "it resets at 00:00 UTC"


class OverBudget(SplitshotError):
    """Today's provider budget (this server's or the whole bot's) would be exceeded."""

    def __init__(self, *, server: bool) -> None:
        self.server = server
        who = "This server has" if server else "Splitshot has"
        scope = "today's image budget" if server else "today's image budget for all servers"
        super().__init__(f"{who} used {scope}; {RESETS}. Nothing was charged.")


class TooBusy(SplitshotError):
    """As many comparisons as the operator allows are running right now."""

    def __init__(self, running: int) -> None:
        self.running = running
        super().__init__(
            f"Splitshot is running {running} comparisons right now, as many as it may at once; "
            "try again in a minute. Nothing was charged."
        )


@dataclass(frozen=True, slots=True)
class SpendItem:
    """One model of a comparison and what its image costs the operator."""

    model_id: str
    cost: int


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One line of the spend report: a server's images from one model on one UTC day."""

    day: date
    guild_id: int
    model_id: str
    images: int
    cost: int
    running: int


# --------------------------------------------------------------------------- pure rules
def model_cost(model: Model, quality: Quality) -> int:
    """What one image costs the operator: the catalog's credits at that quality tier."""
    return model.credits[quality]


def spend_items(plan: Plan) -> list[SpendItem]:
    """A plan's provider cost per model, in catalog credits at the size and route it runs on
    (whatever the server charges); the offline demo stand-ins cost nothing."""
    # Panels carried over from a parent (reroll, swap) cost the operator nothing again.
    return [SpendItem(p.key, 0 if p.route.is_demo else p.unit_price) for p in plan.charged_panels]


def price_floor(model: Model, limits: OperatorLimits) -> int:
    """The lowest standard-tier price a server may set for a model."""
    return math.ceil(model.credits["standard"] * limits.price_floor_percent / 100)


def floored_prices(
    overrides: Mapping[str, int], catalog: Catalog, limits: OperatorLimits
) -> dict[str, int]:
    """A server's price overrides, none below the operator's floor (older saves included)."""
    return {
        model_id: max(price, price_floor(catalog.models[model_id], limits))
        if model_id in catalog.models
        else price
        for model_id, price in overrides.items()
    }


def limit_refusal(name: str, value: object, limits: OperatorLimits, catalog: Catalog) -> str | None:
    """Why the operator does not allow a server setting this value, or None when it may."""
    ceilings = {
        "max_grant": limits.max_grant,
        "starter_grant": limits.max_starter_grant,
        "daily_allowance": limits.max_daily_allowance,
    }
    if name in ceilings and isinstance(value, int):
        ceiling = ceilings[name]
        if ceiling is not None and value > ceiling:
            return f"{name} can be at most {ceiling:,} on this bot (its operator's limit)."
    cap = limits.mod_daily_cap
    if (
        name == "mod_daily_cap"
        and cap is not None
        and isinstance(value, int)
        and not 0 < value <= cap
    ):
        return (
            f"mod_daily_cap can be at most {cap:,} on this bot "
            "(its operator's limit), and cannot be switched off."
        )
    if name == "price_overrides" and isinstance(value, Mapping):
        for model_id, price in value.items():
            model = catalog.models.get(model_id)
            if model is None:
                continue
            floor = price_floor(model, limits)
            if price < floor:
                return (
                    f"{model.name} costs this bot {credits_text(model.credits['standard'])} "
                    f"per image; its price can't go below {floor:,}."
                )
    return None


# --------------------------------------------------------------------------- storage
SQL_DAY_COST = """
SELECT COALESCE(SUM(cost), 0) FROM provider_spend
WHERE day = :day AND state <> 'released' AND (:guild_id IS NULL OR guild_id = :guild_id)
"""
SQL_RUNNING = """
SELECT COUNT(DISTINCT comparison_id) FROM provider_spend
WHERE state = 'running' AND created_at > ?
"""
SQL_INSERT_SPEND = """
INSERT INTO provider_spend (comparison_id, model_id, guild_id, day, cost, created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
SQL_CLOSE_SPEND = """
UPDATE provider_spend SET state = ?, closed_at = ?
WHERE comparison_id = ? AND model_id = ? AND state = 'running'
"""
SQL_RELEASE_ALL = """
UPDATE provider_spend SET state = 'released', closed_at = ?
WHERE comparison_id = ? AND state = 'running'
"""
SQL_MODELS = "SELECT model_id FROM provider_spend WHERE comparison_id = ?"
SQL_REPORT = """
SELECT day, guild_id, model_id,
       SUM(state = 'spent') AS images,
       COALESCE(SUM(CASE WHEN state <> 'released' THEN cost END), 0) AS cost,
       SUM(state = 'running') AS running
FROM provider_spend
WHERE day >= :since AND (:guild_id IS NULL OR guild_id = :guild_id)
GROUP BY day, guild_id, model_id
ORDER BY day DESC, guild_id, model_id
"""


PG_LOCK_BUDGET = "SELECT pg_advisory_xact_lock(hashtextextended('provider-budget', 0))"
PG_DAY_COST = """
SELECT COALESCE(SUM(cost), 0)::bigint FROM provider_spend
WHERE day = $1 AND state <> 'released' AND ($2::bigint IS NULL OR guild_id = $2)
"""
PG_RUNNING = """
SELECT COUNT(DISTINCT comparison_id) FROM provider_spend
WHERE state = 'running' AND created_at > $1
"""
PG_INSERT_SPEND = """
INSERT INTO provider_spend (comparison_id, model_id, guild_id, day, cost, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""
PG_CLOSE_SPEND = """
UPDATE provider_spend SET state = $1, closed_at = $2
WHERE comparison_id = $3 AND model_id = $4 AND state = 'running'
"""
PG_RELEASE_ALL = """
UPDATE provider_spend SET state = 'released', closed_at = $1
WHERE comparison_id = $2 AND state = 'running'
"""
PG_MODELS = "SELECT model_id FROM provider_spend WHERE comparison_id = $1"
PG_REPORT = """
SELECT day, guild_id, model_id,
       COUNT(*) FILTER (WHERE state = 'spent') AS images,
       COALESCE(SUM(cost) FILTER (WHERE state <> 'released'), 0)::bigint AS cost,
       COUNT(*) FILTER (WHERE state = 'running') AS running
FROM provider_spend
WHERE day >= $1 AND ($2::bigint IS NULL OR guild_id = $2)
GROUP BY day, guild_id, model_id
ORDER BY day DESC, guild_id, model_id
"""


def admit(
    conn: sqlite3.Connection,
    guild_id: int,
    comparison_id: str,
    items: Sequence[SpendItem],
    limits: OperatorLimits,
    now: datetime,
    running_window: timedelta,
) -> SplitshotError | None:
    """Record a comparison's spend as running, or return why the operator's budget refuses it."""
    if limits.max_running is not None:
        running = conn.execute(SQL_RUNNING, (iso(now - running_window),)).fetchone()[0]
        if running >= limits.max_running:
            return TooBusy(running)
    day = now.astimezone(UTC).date().isoformat()
    cost = sum(item.cost for item in items)
    if cost:
        for budget, server in (
            (limits.guild_daily_budget, True),
            (limits.global_daily_budget, False),
        ):
            if budget is None:
                continue
            params = {"day": day, "guild_id": guild_id if server else None}
            used = conn.execute(SQL_DAY_COST, params).fetchone()[0]
            if used + cost > budget:
                return OverBudget(server=server)
    stamp = iso(now)
    conn.executemany(
        SQL_INSERT_SPEND,
        [(comparison_id, item.model_id, guild_id, day, item.cost, stamp) for item in items],
    )
    return None


async def admit_pg(
    conn: PgConnection,
    guild_id: int,
    comparison_id: str,
    items: Sequence[SpendItem],
    limits: OperatorLimits,
    now: datetime,
    running_window: timedelta,
) -> SplitshotError | None:
    """``admit`` on PostgreSQL, inside the caller's transaction (which it serialises)."""
    # One lock for every process: the running count and both budgets are read, then written.
    await conn.execute(PG_LOCK_BUDGET)
    if limits.max_running is not None:
        running = int(await conn.fetchval(PG_RUNNING, now - running_window))
        if running >= limits.max_running:
            return TooBusy(running)
    day = now.astimezone(UTC).date()
    cost = sum(item.cost for item in items)
    if cost:
        for budget, server in (
            (limits.guild_daily_budget, True),
            (limits.global_daily_budget, False),
        ):
            if budget is None:
                continue
            used = int(await conn.fetchval(PG_DAY_COST, day, guild_id if server else None))
            if used + cost > budget:
                return OverBudget(server=server)
    await conn.executemany(
        PG_INSERT_SPEND,
        [(comparison_id, item.model_id, guild_id, day, item.cost, now) for item in items],
    )
    return None


async def finish_pg(
    conn: PgConnection, comparison_id: str, delivered: Collection[str] | None, now: datetime
) -> None:
    """``finish`` on PostgreSQL, inside the caller's transaction."""
    if delivered is None:
        await conn.execute(PG_RELEASE_ALL, now, comparison_id)
        return
    models = [row[0] for row in await conn.fetch(PG_MODELS, comparison_id)]
    await conn.executemany(
        PG_CLOSE_SPEND,
        [
            ("spent" if model in delivered else "released", now, comparison_id, model)
            for model in models
        ],
    )


def finish(
    conn: sqlite3.Connection, comparison_id: str, delivered: Collection[str] | None, now: str
) -> None:
    """Mark the delivered models spent and the rest released (all released when None)."""
    if delivered is None:
        conn.execute(SQL_RELEASE_ALL, (now, comparison_id))
        return
    models = [row[0] for row in conn.execute(SQL_MODELS, (comparison_id,))]
    conn.executemany(
        SQL_CLOSE_SPEND,
        [
            ("spent" if model in delivered else "released", now, comparison_id, model)
            for model in models
        ],
    )


def report(conn: sqlite3.Connection, since: date, guild_id: int | None) -> list[SpendRow]:
    """Spend per UTC day, server and model since ``since``, newest day first."""
    rows = conn.execute(SQL_REPORT, {"since": since.isoformat(), "guild_id": guild_id})
    return [
        SpendRow(
            date.fromisoformat(row["day"]),
            int(row["guild_id"]),
            str(row["model_id"]),
            int(row["images"]),
            int(row["cost"]),
            int(row["running"]),
        )
        for row in rows
    ]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Budget:
    """The operator's budget over one database; the comparison flow calls it at reserve time."""

    def __init__(
        self,
        db: AnyDatabase,
        limits: OperatorLimits,
        *,
        clock: Callable[[], datetime] = _utc_now,
        running_window: timedelta = DEFAULT_RUNNING_WINDOW,
    ) -> None:
        self._db = db
        self.limits = limits
        self._clock = clock
        self._running_window = running_window

    async def admit(self, guild_id: int, plan: Plan) -> None:
        """Count a comparison against today's budgets, or raise OverBudget / TooBusy."""
        from bot.db import PostgresDatabase

        items = spend_items(plan)
        refused: SplitshotError | None
        if isinstance(self._db, PostgresDatabase):
            async with self._db.transaction() as conn:
                refused = await admit_pg(
                    conn,
                    guild_id,
                    plan.id,
                    items,
                    self.limits,
                    self._clock(),
                    self._running_window,
                )
        else:
            refused = await self._db.run_in_transaction(
                partial(
                    admit,
                    guild_id=guild_id,
                    comparison_id=plan.id,
                    items=items,
                    limits=self.limits,
                    now=self._clock(),
                    running_window=self._running_window,
                )
            )
        if refused is not None:
            log.info(
                "guild %d: comparison %s refused by the budget: %s", guild_id, plan.id, refused
            )
            raise refused

    async def finish(self, comparison_id: str, delivered: Collection[str] | None = None) -> None:
        """Close a comparison's spend: delivered models spent, the rest released; never raises.

        Bookkeeping must not sink a delivered result or a refund: a row left running stops
        counting as running after the window, and only ever over-counts the day's spend.
        """
        try:
            await asyncio.shield(self._finish(comparison_id, delivered))
        except Exception:
            log.exception("could not close the provider spend of comparison %s", comparison_id)

    async def _finish(self, comparison_id: str, delivered: Collection[str] | None) -> None:
        from bot.db import PostgresDatabase

        if isinstance(self._db, PostgresDatabase):
            async with self._db.transaction() as conn:
                await finish_pg(conn, comparison_id, delivered, self._clock())
            return
        now = iso(self._clock())
        await self._db.run_in_transaction(
            partial(finish, comparison_id=comparison_id, delivered=delivered, now=now)
        )

    async def report(self, days: int = 7, guild_id: int | None = None) -> list[SpendRow]:
        """Spend per UTC day, server and model for the last ``days`` days (today included)."""
        from bot.db import PostgresDatabase

        since = self._clock().astimezone(UTC).date() - timedelta(days=max(1, days) - 1)
        if isinstance(self._db, PostgresDatabase):
            rows = await self._db.fetch(PG_REPORT, since, guild_id)
            return [
                SpendRow(
                    row["day"],
                    int(row["guild_id"]),
                    str(row["model_id"]),
                    int(row["images"]),
                    int(row["cost"]),
                    int(row["running"]),
                )
                for row in rows
            ]
        return await self._db.run_read(partial(report, since=since, guild_id=guild_id))

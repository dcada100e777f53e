"""Builds the shared resources once (HTTP client, database, catalog, providers) and closes them in reverse."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from bot.catalog import Catalog, load_catalog
from bot.comparisons.capacity import Capacity
from bot.comparisons.service import ComparisonService
from bot.measure.ocr import TextMeter
from bot.settings import Settings
from bot.workers import Workers, favour_the_loop, return_large_buffers
from providers._http import read_in_large_chunks
from providers.limits import RequestSlots
from providers.registry import Registry, build_registry

if TYPE_CHECKING:
    from bot.credits.ledger import Ledger
    from bot.db import AnyDatabase

log = logging.getLogger(__name__)

#: connect fast, but let slow image models take their time to answer
HTTP_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=30.0)


@dataclass(frozen=True, slots=True)
class Resources:
    """Everything a command or the bot needs, opened once per process."""

    settings: Settings
    catalog: Catalog
    http: httpx.AsyncClient
    registry: Registry
    service: ComparisonService
    db: AnyDatabase | None
    ledger: Ledger | None


@asynccontextmanager
async def open_resources(
    settings: Settings,
    *,
    for_discord: bool,
    with_db: bool = True,
    db_path: str | os.PathLike[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Resources]:
    """Open the HTTP client, providers and (optionally) the database; close them in reverse.

    ``db_path`` (default: the settings' ``SPLITSHOT_DB``) is a SQLite file or a PostgreSQL URL.
    """
    return_large_buffers()
    favour_the_loop()
    read_in_large_chunks()
    catalog = load_catalog(settings.catalog_path)
    limits = settings.slot_limits(catalog.models)
    slots = RequestSlots(limits)
    # One connection per request slot (and some for result downloads): httpx's default of 100
    # would make requests beyond it wait for a connection, on a clock the lanes do not see.
    connections = sum(limits.for_adapter(n) for n in settings.keyed_adapters()) + 16
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=HTTP_TIMEOUT,
                transport=transport,
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                ),
            )
        )
        workers = Workers(
            compose_slots=settings.compose_slots, output_budget=settings.output_budget
        )
        stack.callback(workers.close)
        demo = settings.demo_enabled(for_discord=for_discord)
        registry = build_registry(settings.providers, http, demo_enabled=demo)
        text_meter = TextMeter()
        stack.callback(text_meter.close)
        capacity = Capacity(
            slots,
            max_running=settings.max_running,
            max_running_per_server=settings.max_running_per_server,
            max_wait_s=settings.max_queue_wait_s,
        )
        service = ComparisonService(
            catalog,
            registry,
            model_timeout_s=settings.model_timeout_s,
            allow_demo=demo,
            text_meter=text_meter,
            slots=slots,
            workers=workers,
            capacity=capacity,
        )
        db = ledger = None
        if with_db:
            from bot.comparisons.job import recover_undelivered
            from bot.credits.budget import Budget
            from bot.credits.ledger import Ledger
            from bot.db import open_database

            db = await open_database(db_path or settings.db_target)
            stack.push_async_callback(db.close)
            ledger = Ledger(db, limits=settings.limits)
            service.budget = Budget(db, settings.limits)
            # A crash between reserve and settle must lose nothing: refund what was left open.
            recovered = await ledger.recover_stale_holds(
                timedelta(minutes=settings.stale_hold_minutes)
            )
            if recovered:
                log.warning("refunded %d comparison(s) left open by an earlier run", recovered)
            # ...and a crash between the settle and the post must not charge for an unseen image.
            await recover_undelivered(ledger, db, timedelta(minutes=settings.stale_hold_minutes))
        log.info("resources ready: %r", settings)
        yield Resources(settings, catalog, http, registry, service, db, ledger)

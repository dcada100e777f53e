"""The Discord layer end to end on PostgreSQL: the same SimCord tests, another backend.

The tests below are imported from their own modules and collected again here, where the
``resources`` fixture opens a fresh PostgreSQL database instead of a SQLite file: /compare
charges and records, a member's running cap and cooldown hold across processes, reactions
vote, buttons and votes survive a restart, credits and config commands work (with their
settings history and the operator's ceilings), follow-ups reuse the stored panel images,
/history lists them, the budget refuses, and a result nobody received is refunded, all through
the PostgreSQL stores.

Left out: tests that read the tables with SQLite's SQL, and tests that dispatch a raw gateway
event by hand and assert straight after ``env.settle()``, which does not wait for a handler
that is waiting on the database's socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
import pytest_asyncio

from bot.catalog import load_catalog
from bot.comparisons.service import ComparisonService
from bot.credits.ledger import Ledger
from bot.db import PostgresDatabase
from bot.resources import Resources
from bot.settings import Settings
from providers.registry import Registry
from tests.cogs.conftest import MODEL_TIMEOUT, FakeAdapter
from tests.cogs.test_compare import (  # noqa: F401
    test_a_blind_result_hides_prices_dots_and_sizes_until_voting_closes,
    test_blind_results_name_no_model,
    test_details_and_delete_buttons,
    test_every_model_failing_refunds_everything,
    test_failing_vote_reactions_keep_the_result_and_the_charge,
    test_result_buttons_survive_a_restart,
    test_shutdown_lets_a_delivered_comparison_settle,
)
from tests.cogs.test_compare_admission import (  # noqa: F401
    other_process,
    test_a_comparison_left_by_a_dead_process_stops_counting_when_its_lease_ends,
    test_the_cap_and_the_cooldown_hold_across_processes,
)
from tests.cogs.test_compare_text import (  # noqa: F401
    measured,
    test_the_card_shows_the_measured_row_and_says_who_spelled_it,
)
from tests.cogs.test_config import test_config_set_show_reset_round_trip  # noqa: F401
from tests.cogs.test_credits import (  # noqa: F401
    test_daily_once_per_period,
    test_grant_caps_and_refusals,
    test_history_pages_with_buttons,
    test_top_lists_the_richest_members,
)
from tests.cogs.test_followups import (  # noqa: F401
    test_a_failed_variant_is_refunded,
    test_buttons_work_in_a_new_bot_process_on_the_same_database,
    test_details_show_the_lineage_and_history_lists_it,
    test_edit_compares_edits_of_one_image,
    test_swap_model_pays_only_the_new_model,
    test_variants_of_a_panel_are_two_new_images_charged_per_image,
)
from tests.cogs.test_trust import (  # noqa: F401
    test_nobody_grants_to_themselves,
    test_operator_ceilings_refuse_a_server_lifting_its_caps,
    test_over_budget_refuses_privately_with_nothing_charged,
    test_revoking_from_a_newcomer_never_raises_their_balance,
    test_settings_changes_are_kept_and_posted_to_the_audit_channel,
)
from tests.cogs.test_votes import (  # noqa: F401
    test_closing_a_blind_comparison_reveals_the_models,
    test_the_requester_counts_when_the_server_allows_it,
    test_votes_count_on_results_from_before_a_restart,
)
from tests.cogs.test_votes_leaderboard import (  # noqa: F401
    test_versus_and_later_verdicts_cite_the_servers_results,
    test_versus_reuses_one_fit_until_a_vote_and_only_leaderboard_bootstraps,
)


@pytest_asyncio.fixture
async def resources(
    pg_url: str, fake: FakeAdapter, ledger_clock: Callable[[], datetime]
) -> AsyncIterator[Resources]:
    settings = Settings(database_url=pg_url, demo_mode=False)
    catalog = load_catalog()
    registry = Registry({"openai": fake, "gemini": fake, "fal": fake})
    service = ComparisonService(catalog, registry, model_timeout_s=MODEL_TIMEOUT, allow_demo=False)
    db = await PostgresDatabase.open(pg_url)

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

"""Shoot-outs end to end on PostgreSQL: the same SimCord tests as ``test_shootouts``, another
backend — start, rounds, team votes, closing on time, a restart in the middle, the team pool,
the export (from Discord and the command line), crash recovery and rounds outlasting the
stale-hold sweep's window, all through the PostgreSQL stores. The ``resources`` fixture opens a
fresh PostgreSQL database for each test."""

from __future__ import annotations

from tests.cogs.test_postgres import resources  # noqa: F401
from tests.cogs.test_shootouts import (  # noqa: F401
    fake,
    test_a_banned_word_names_the_prompt_and_spends_nothing,
    test_a_crash_leaves_nothing_held_after_the_next_start,
    test_a_deleted_team_role_lets_everyone_vote_and_is_reported,
    test_a_member_short_of_credits_sees_the_shortfall,
    test_a_named_round_exports_as_a_comparison,
    test_a_refusing_model_is_refunded_for_that_round_and_the_rest_continue,
    test_a_restart_in_the_middle_refunds_what_did_not_run_and_still_closes_on_time,
    test_a_thread_deleted_mid_way_keeps_votes_and_reports_in_the_channel,
    test_a_whole_team_shootout_from_pool_to_report_and_export,
    test_an_empty_pool_refuses_with_the_shortfall,
    test_close_by_command_and_list,
    test_disabled_models_are_refused,
    test_export_of_an_open_blind_comparison_is_refused,
    test_no_prompts_is_refused_privately,
    test_only_moderators_spend_the_pool,
    test_pool_grants_are_moderator_only_and_audited,
    test_the_playground_hint_runs_a_two_prompt_shootout,
    test_without_thread_permission_the_rounds_go_to_the_channel,
)
from tests.cogs.test_shootouts_sweep import (  # noqa: F401
    test_a_round_whose_hold_was_refunded_before_it_ran_is_not_run,
    test_rounds_outlasting_the_stale_window_keep_their_holds_and_all_settle,
)

"""Settings for load: request slots per adapter and per model, the compose budget, the caps."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError
from providers.limits import DEFAULT_REQUESTS


def test_request_slots_default_to_each_providers_tier_and_can_be_set_per_adapter_and_model() -> (
    None
):
    settings = Settings.from_env(
        {
            "SPLITSHOT_MAX_REQUESTS_GEMINI": "40",
            "SPLITSHOT_MAX_REQUESTS_NANO_BANANA_PRO": "8",
            "SPLITSHOT_MAX_REQUESTS_GPT_IMAGE_1_5": "2",
        }
    )
    limits = settings.slot_limits(["gpt-image-2", "nano-banana-pro", "gpt-image-1.5"])
    assert limits.for_adapter("openai") == DEFAULT_REQUESTS["openai"]
    assert limits.for_adapter("gemini") == 40
    assert limits.for_model("nano-banana-pro") == 8 and limits.for_model("gpt-image-1.5") == 2
    assert limits.for_model("gpt-image-2") is None
    # The adapters' own limit follows the lanes, so only the lanes make a request wait.
    assert settings.providers.concurrency["gemini"] == 40


def test_the_old_concurrency_names_still_work() -> None:
    settings = Settings.from_env({"SPLITSHOT_OPENAI_CONCURRENCY": "9"})
    assert settings.slot_limits([]).for_adapter("openai") == 9


def test_a_per_model_limit_naming_no_model_fails_fast() -> None:
    settings = Settings.from_env({"SPLITSHOT_MAX_REQUESTS_GPT_IMAGE_9": "3"})
    with pytest.raises(SettingsError, match="SPLITSHOT_MAX_REQUESTS_GPT_IMAGE_9 names no adapter"):
        settings.slot_limits(["gpt-image-2"])


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SPLITSHOT_MAX_REQUESTS_OPENAI": "0"}, "must be at least 1"),
        ({"SPLITSHOT_OUTPUT_BUDGET_MB": "8"}, "must be at least 16"),
        ({"SPLITSHOT_MAX_RUNNING": "none"}, "whole number"),
        ({"SPLITSHOT_MAX_QUEUE_WAIT": "-1"}, "must be positive"),
    ],
)
def test_bad_load_settings_fail_with_one_sentence(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(env)


def test_load_settings_are_read_once() -> None:
    settings = Settings.from_env(
        {
            "SPLITSHOT_COMPOSE_SLOTS": "3",
            "SPLITSHOT_OUTPUT_BUDGET_MB": "256",
            "SPLITSHOT_MAX_RUNNING": "50",
            "SPLITSHOT_MAX_RUNNING_PER_SERVER": "10",
            "SPLITSHOT_MAX_QUEUE_WAIT": "90",
        }
    )
    assert settings.compose_slots == 3 and settings.output_budget == 256 * 2**20
    assert (settings.max_running, settings.max_running_per_server) == (50, 10)
    assert settings.max_queue_wait_s == 90.0

"""Settings come from the environment once; bad values fail fast; secrets stay out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.discord_token is None and settings.db_path == Path("splitshot.db")
    assert settings.demo_enabled(for_discord=False) and not settings.demo_enabled(for_discord=True)
    assert settings.providers.openai_base_url == "https://api.openai.com/v1"
    assert settings.providers.gemini_base_url == "https://generativelanguage.googleapis.com"
    assert settings.providers.fal_base_url == "https://queue.fal.run"
    assert settings.keyed_adapters() == ()


def test_keys_and_gateways() -> None:
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-secret-1",
            "GOOGLE_API_KEY": "g-secret-2",
            "FAL_KEY": "fal-secret-3",
            "OPENAI_BASE_URL": "http://127.0.0.1:9000/v1/",
            "SPLITSHOT_DEMO": "1",
        }
    )
    assert settings.keyed_adapters() == ("openai", "gemini", "fal")
    assert settings.providers.gemini_api_key == "g-secret-2"
    assert settings.providers.openai_base_url == "http://127.0.0.1:9000/v1"
    assert settings.demo_enabled(for_discord=True)
    for text in (repr(settings), str(settings), repr(settings.providers)):
        assert "secret" not in text


def test_azure_variant() -> None:
    settings = Settings.from_env(
        {"AZURE_OPENAI_API_KEY": "az", "OPENAI_DEPLOYMENTS": "gpt-image-2=img2"}
    )
    assert settings.providers.openai_auth == "azure"
    assert settings.providers.openai_deployments == {"gpt-image-2": "img2"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPLITSHOT_DEMO": "maybe"}, "SPLITSHOT_DEMO must be 1 or 0"),
        ({"SPLITSHOT_MODEL_TIMEOUT": "soon"}, "SPLITSHOT_MODEL_TIMEOUT must be a number"),
        ({"SPLITSHOT_DEV_GUILD": "my-server"}, "SPLITSHOT_DEV_GUILD must be a server id"),
        ({"SPLITSHOT_DEMO_LATENCY": "3-1"}, "SPLITSHOT_DEMO_LATENCY must be a range"),
        ({"SPLITSHOT_OPENAI_CONCURRENCY": "0"}, "must be at least 1"),
        ({"OPENAI_DEPLOYMENTS": "nonsense"}, "OPENAI_DEPLOYMENTS must look like"),
        ({"SPLITSHOT_MODEL_TIMEOUT": "1800"}, "SPLITSHOT_STALE_HOLD_MINUTES must be at least 45"),
        (
            {"SPLITSHOT_STALE_HOLD_MINUTES": "5"},
            "must be at least 19 with SPLITSHOT_MODEL_TIMEOUT=240",
        ),
    ],
)
def test_bad_values_fail_fast_with_one_sentence(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_splitshot_db_selects_the_backend_and_hides_a_password() -> None:
    path = Settings.from_env({"SPLITSHOT_DB": "/var/lib/splitshot/ledger.db"})
    assert (path.database_url, path.db_target) == (None, "/var/lib/splitshot/ledger.db")
    url = "postgresql://bot:s3cret@db.internal:5432/splitshot"
    remote = Settings.from_env({"SPLITSHOT_DB": url})
    assert (remote.database_url, remote.db_target) == (url, url)
    assert "s3cret" not in repr(remote) and "bot:***@db.internal" in repr(remote)
    with pytest.raises(SettingsError, match="file path \\(SQLite\\) or a postgresql:// URL"):
        Settings.from_env({"SPLITSHOT_DB": "mysql://root@localhost/splitshot"})

"""Settings read once from the environment into a frozen object; nothing else reads os.environ."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.comparisons.capacity import (
    DEFAULT_MAX_RUNNING,
    DEFAULT_MAX_RUNNING_PER_SERVER,
    DEFAULT_MAX_WAIT_S,
)
from bot.credits.rules import OperatorLimits
from bot.db.postgres import is_postgres_url, redact
from bot.errors import SplitshotError
from bot.workers import DEFAULT_OUTPUT_BUDGET
from providers.limits import SlotLimits
from providers.registry import ProvidersConfig

#: time a delivered comparison may still spend uploading (Discord's interaction lives 15 min)
UPLOAD_ALLOWANCE_S = 15 * 60


class SettingsError(SplitshotError):
    """A setting is present but unusable; the message names it and says what is expected."""


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = _opt(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _limit(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A ceiling: unset keeps the default, 0 (or "off") means no limit."""
    raw = _opt(env, name)
    if raw is None:
        return default
    if raw.lower() in {"off", "none", "unlimited"}:
        return None
    return _int(env, name, 0, minimum=0) or None


def _limits(env: Mapping[str, str]) -> OperatorLimits:
    base = OperatorLimits()
    return OperatorLimits(
        max_grant=_limit(env, "SPLITSHOT_MAX_GRANT", base.max_grant),
        mod_daily_cap=_limit(env, "SPLITSHOT_MOD_DAILY_CAP", base.mod_daily_cap),
        max_starter_grant=_limit(env, "SPLITSHOT_MAX_STARTER_GRANT", base.max_starter_grant),
        max_daily_allowance=_limit(env, "SPLITSHOT_MAX_DAILY_ALLOWANCE", base.max_daily_allowance),
        guild_daily_budget=_limit(env, "SPLITSHOT_GUILD_DAILY_BUDGET", base.guild_daily_budget),
        global_daily_budget=_limit(env, "SPLITSHOT_DAILY_BUDGET", base.global_daily_budget),
        price_floor_percent=_int(
            env, "SPLITSHOT_PRICE_FLOOR_PERCENT", base.price_floor_percent, minimum=0
        ),
        max_running=_limit(env, "SPLITSHOT_MAX_RUNNING", base.max_running),
    )


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _opt(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}.") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}.")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = _opt(env, name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (true/false), got {raw!r}.")


def _latency(env: Mapping[str, str], name: str) -> tuple[float, float]:
    raw = _opt(env, name)
    if raw is None:
        return (1.0, 3.0)
    low, _, high = raw.partition("-")
    try:
        lo = float(low)
        hi = float(high) if high else lo
    except ValueError:
        raise SettingsError(f"{name} must look like '1-3' or '0' (seconds), got {raw!r}.") from None
    if lo < 0 or hi < lo:
        raise SettingsError(f"{name} must be a range of seconds like '1-3', got {raw!r}.")
    return (lo, hi)


#: SPLITSHOT_MAX_REQUESTS_<ADAPTER> or SPLITSHOT_MAX_REQUESTS_<MODEL ID, with _ for - and .>
MAX_REQUESTS_PREFIX = "SPLITSHOT_MAX_REQUESTS_"
ADAPTER_NAMES = ("openai", "gemini", "fal", "demo")
#: the names these settings had before they could be set per model
_OLD_CONCURRENCY = {name: f"SPLITSHOT_{name.upper()}_CONCURRENCY" for name in ADAPTER_NAMES[:3]}


def request_key(model_id: str) -> str:
    """How a model id is spelt in SPLITSHOT_MAX_REQUESTS_*: lower case, '_' for anything else."""
    return "".join(c if c.isalnum() else "_" for c in model_id.lower())


def _max_requests(env: Mapping[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """Request slots per adapter and per model key, as configured (defaults are the adapters')."""
    adapters: dict[str, int] = {}
    models: dict[str, int] = {}
    for name, old in _OLD_CONCURRENCY.items():
        if _opt(env, old) is not None:
            adapters[name] = _int(env, old, 1, minimum=1)
    for key in sorted(env):
        if not key.startswith(MAX_REQUESTS_PREFIX) or _opt(env, key) is None:
            continue
        suffix = key.removeprefix(MAX_REQUESTS_PREFIX).lower()
        value = _int(env, key, 1, minimum=1)
        if suffix in ADAPTER_NAMES:
            adapters[suffix] = value
        else:
            models[suffix] = value
    return adapters, models


def _deployments(env: Mapping[str, str], name: str) -> dict[str, str]:
    raw = _opt(env, name)
    if raw is None:
        return {}
    out: dict[str, str] = {}
    for pair in raw.split(","):
        model, sep, deployment = pair.partition("=")
        if not sep or not model.strip() or not deployment.strip():
            raise SettingsError(
                f"{name} must look like 'gpt-image-2=my-deployment,...', got {raw!r}."
            )
        out[model.strip()] = deployment.strip()
    return out


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration (per-server settings live in the database)."""

    discord_token: str | None = None
    dev_guild_id: int | None = None
    db_path: Path = Path("splitshot.db")
    #: set when SPLITSHOT_DB is a postgresql:// URL: PostgreSQL instead of the SQLite file
    database_url: str | None = None
    catalog_path: Path | None = None
    #: None: demo stand-ins on for the CLI and the playground, off for a bot with a token
    demo_mode: bool | None = None
    model_timeout_s: float = 240.0
    stale_hold_minutes: int = 30
    user_hash_salt: str = "splitshot"
    playground_port: int = 8765
    #: None: INFO for the bot, WARNING for one-shot CLI commands
    log_level: str | None = None
    #: discord.py's own loggers stay at INFO or quieter unless this asks for more: at DEBUG they
    #: print interaction webhook URLs, which carry tokens
    discord_log_level: str | None = None
    #: the token-less playground spends real provider money only when this is set
    playground_real: bool = False
    #: the operator's ceilings on what any server may set, and the provider budget
    limits: OperatorLimits = field(default_factory=OperatorLimits)
    providers: ProvidersConfig = field(default_factory=ProvidersConfig)
    #: the Discord shards this process owns (None: one process, discord.py's default)
    shard_ids: tuple[int, ...] | None = None
    #: how many shards the bot has in all (with ``shard_ids``; None lets Discord say)
    shard_count: int | None = None
    #: request slots per adapter name; unset ones take the adapter's documented default
    max_requests: Mapping[str, int] = field(default_factory=dict)
    #: request slots per model, keyed by :func:`request_key` of the model id
    max_requests_per_model: Mapping[str, int] = field(default_factory=dict)
    #: composes at once (None: one per core)
    compose_slots: int | None = None
    #: bytes of provider output the running comparisons may hold together
    output_budget: int = DEFAULT_OUTPUT_BUDGET
    #: comparisons running at once, in all and per server
    max_running: int = DEFAULT_MAX_RUNNING
    max_running_per_server: int = DEFAULT_MAX_RUNNING_PER_SERVER
    #: longest expected wait for a request slot before a comparison is refused up front
    max_queue_wait_s: float = DEFAULT_MAX_WAIT_S

    def slot_limits(self, model_ids: Iterable[str]) -> SlotLimits:
        """Request slots for these models; a per-model setting naming no model fails fast."""
        by_key = {request_key(m): m for m in model_ids}
        unknown = sorted(set(self.max_requests_per_model) - set(by_key))
        if unknown:
            names = ", ".join(MAX_REQUESTS_PREFIX + k.upper() for k in unknown)
            raise SettingsError(
                f"{names} names no adapter ({', '.join(ADAPTER_NAMES)}) and no catalog model."
            )
        models = {by_key[k]: v for k, v in self.max_requests_per_model.items()}
        return SlotLimits(dict(self.max_requests), models)

    def __repr__(self) -> str:
        # Secrets must never reach logs through a repr.
        return (
            f"Settings(discord_token={'set' if self.discord_token else 'unset'}, "
            f"db={self.db_label!r}, demo_mode={self.demo_mode}, "
            f"adapters_with_keys={self.keyed_adapters()})"
        )

    @property
    def db_target(self) -> str:
        """What to open: the PostgreSQL URL when one is set, else the SQLite file's path."""
        return self.database_url or str(self.db_path)

    @property
    def db_label(self) -> str:
        """``db_target`` safe to log (a URL's password hidden)."""
        return redact(self.database_url) if self.database_url else str(self.db_path)

    def keyed_adapters(self) -> tuple[str, ...]:
        """Names of the adapters whose key is set (for logs; never the keys)."""
        p = self.providers
        named = (("openai", p.openai_api_key), ("gemini", p.gemini_api_key), ("fal", p.fal_key))
        return tuple(name for name, key in named if key)

    def demo_enabled(self, *, for_discord: bool) -> bool:
        """Whether models without a real adapter are served by the demo stand-in."""
        if self.demo_mode is not None:
            return self.demo_mode
        return not for_discord

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting once; a bad value fails fast with one readable sentence."""
        env = os.environ if env is None else env
        dev_guild = _opt(env, "SPLITSHOT_DEV_GUILD")
        catalog = _opt(env, "SPLITSHOT_CATALOG")
        max_requests, per_model = _max_requests(env)
        # The adapters' own limit matches their lanes, so only the lanes ever make one wait.
        limits = SlotLimits(max_requests)
        concurrency = {name: limits.for_adapter(name) for name in ADAPTER_NAMES[:3]}
        compose_slots = _int(env, "SPLITSHOT_COMPOSE_SLOTS", 0, minimum=0)
        azure_key = _opt(env, "AZURE_OPENAI_API_KEY")
        providers = ProvidersConfig(
            openai_api_key=_opt(env, "OPENAI_API_KEY") or azure_key,
            openai_base_url=(_opt(env, "OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip(
                "/"
            ),
            openai_auth="azure" if azure_key and not _opt(env, "OPENAI_API_KEY") else "bearer",
            openai_deployments=_deployments(env, "OPENAI_DEPLOYMENTS"),
            gemini_api_key=_opt(env, "GEMINI_API_KEY") or _opt(env, "GOOGLE_API_KEY"),
            gemini_base_url=(
                _opt(env, "GEMINI_BASE_URL") or "https://generativelanguage.googleapis.com"
            ).rstrip("/"),
            fal_key=_opt(env, "FAL_KEY"),
            fal_base_url=(_opt(env, "FAL_BASE_URL") or "https://queue.fal.run").rstrip("/"),
            concurrency=concurrency,
            demo_latency=_latency(env, "SPLITSHOT_DEMO_LATENCY"),
        )
        model_timeout = _float(env, "SPLITSHOT_MODEL_TIMEOUT", 240.0)
        stale_minutes = _int(env, "SPLITSHOT_STALE_HOLD_MINUTES", 30, minimum=1)
        # The sweep refunds holds older than this; one must never catch a comparison still
        # running (its models, then up to 15 minutes of Discord upload and fallback).
        needed = math.ceil((model_timeout + UPLOAD_ALLOWANCE_S) / 60)
        if stale_minutes < needed:
            raise SettingsError(
                f"SPLITSHOT_STALE_HOLD_MINUTES must be at least {needed} with "
                f"SPLITSHOT_MODEL_TIMEOUT={model_timeout:g}, or running comparisons could be "
                "refunded while they deliver."
            )
        shard_ids, shard_count = _shards(env)
        database = _opt(env, "SPLITSHOT_DB")
        database_url = database if is_postgres_url(database) else None
        if database is not None and database_url is None and "://" in database:
            raise SettingsError(
                "SPLITSHOT_DB must be a file path (SQLite) or a postgresql:// URL, got "
                f"{redact(database)!r}."
            )
        if dev_guild is not None and not dev_guild.isdigit():
            raise SettingsError(
                f"SPLITSHOT_DEV_GUILD must be a server id (digits), got {dev_guild!r}."
            )
        return cls(
            discord_token=_opt(env, "DISCORD_TOKEN"),
            dev_guild_id=int(dev_guild) if dev_guild else None,
            db_path=Path(database if database and not database_url else "splitshot.db"),
            database_url=database_url,
            catalog_path=Path(catalog) if catalog else None,
            demo_mode=_bool(env, "SPLITSHOT_DEMO"),
            model_timeout_s=model_timeout,
            stale_hold_minutes=stale_minutes,
            user_hash_salt=_opt(env, "SPLITSHOT_USER_SALT") or "splitshot",
            playground_port=_int(env, "SPLITSHOT_PLAYGROUND_PORT", 8765, minimum=0),
            log_level=(_opt(env, "SPLITSHOT_LOG_LEVEL") or "").upper() or None,
            discord_log_level=(_opt(env, "SPLITSHOT_DISCORD_LOG_LEVEL") or "").upper() or None,
            playground_real=bool(_bool(env, "SPLITSHOT_PLAYGROUND_REAL")),
            limits=_limits(env),
            providers=providers,
            shard_ids=shard_ids,
            shard_count=shard_count,
            max_requests=max_requests,
            max_requests_per_model=per_model,
            compose_slots=compose_slots or None,
            output_budget=_int(
                env, "SPLITSHOT_OUTPUT_BUDGET_MB", DEFAULT_OUTPUT_BUDGET // 2**20, minimum=16
            )
            * 2**20,
            max_running=_int(env, "SPLITSHOT_MAX_RUNNING", DEFAULT_MAX_RUNNING, minimum=1),
            max_running_per_server=_int(
                env, "SPLITSHOT_MAX_RUNNING_PER_SERVER", DEFAULT_MAX_RUNNING_PER_SERVER, minimum=1
            ),
            max_queue_wait_s=_float(env, "SPLITSHOT_MAX_QUEUE_WAIT", DEFAULT_MAX_WAIT_S),
        )


def _shards(env: Mapping[str, str]) -> tuple[tuple[int, ...] | None, int | None]:
    """SPLITSHOT_SHARD_IDS=0,1 with SPLITSHOT_SHARD_COUNT=4: this process runs shards 0 and 1."""
    ids_text = _opt(env, "SPLITSHOT_SHARD_IDS")
    count_text = _opt(env, "SPLITSHOT_SHARD_COUNT")
    count = None
    if count_text is not None:
        if not count_text.isdigit() or int(count_text) < 1:
            raise SettingsError(
                f"SPLITSHOT_SHARD_COUNT must be a whole number of shards, got {count_text!r}."
            )
        count = int(count_text)
    if ids_text is None:
        return None, count
    parts = [part.strip() for part in ids_text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise SettingsError(
            f"SPLITSHOT_SHARD_IDS must list shard numbers such as 0,1; got {ids_text!r}."
        )
    ids = tuple(sorted({int(part) for part in parts}))
    if count is None:
        raise SettingsError("SPLITSHOT_SHARD_IDS needs SPLITSHOT_SHARD_COUNT (shards in all).")
    if ids[-1] >= count:
        raise SettingsError(
            f"Shard {ids[-1]} does not exist with SPLITSHOT_SHARD_COUNT={count} (shards are "
            f"numbered 0 to {count - 1})."
        )
    return ids, count

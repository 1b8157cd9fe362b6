"""API configuration, read from the environment (never from code).

| variable | meaning |
|---|---|
| `CRYPTO_WAREHOUSE_URL` | warehouse (default: the embedded Delta Lake warehouse under DAGSTER_HOME) |
| `REDIS_URL` | `redis://[:password@]host:port/db`; unset = no cache, in-process rate limits, polling feed |
| `CRYPTO_API_KEYS` | `tier:sha256hex,tier:sha256hex,...` (hashes of the keys, never the keys) |
| `CRYPTO_API_KEYS_FILE` | file with one `tier:sha256hex` per line (`#` comments) |
| `CRYPTO_API_RATE_LIMITS` | e.g. `readonly=60/minute,trading=300/minute,admin=1200/minute` |
| `CRYPTO_API_REDIS_PREFIX` | key and channel prefix in Redis (default `crypto-api`) |
| `CRYPTO_API_WS_POLL_SECONDS` | warehouse polling interval of the price feed when Redis is down |
| `CRYPTO_API_TOKEN_SECRET` | secret (>= 32 characters) that signs page tokens; unset = a random secret per process |
| `CRYPTO_API_ACCESS_LOG` | `1` (default) logs one line per request (keys redacted); `0` turns it off (~10 % more requests/s) |
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TIERS = ("readonly", "trading", "admin")  # each tier may call everything the tiers before it may
KEYS_ENV = "CRYPTO_API_KEYS"
KEYS_FILE_ENV = "CRYPTO_API_KEYS_FILE"
REDIS_URL_ENV = "REDIS_URL"
RATE_LIMITS_ENV = "CRYPTO_API_RATE_LIMITS"
PREFIX_ENV = "CRYPTO_API_REDIS_PREFIX"
POLL_ENV = "CRYPTO_API_WS_POLL_SECONDS"
TOKEN_SECRET_ENV = "CRYPTO_API_TOKEN_SECRET"
TOKEN_SECRET_MIN_CHARS = 32
ACCESS_LOG_ENV = "CRYPTO_API_ACCESS_LOG"

DEFAULT_RATE_LIMITS = {"readonly": "60/minute", "trading": "300/minute", "admin": "1200/minute"}

# Seconds a response stays cached. Every entry is also dropped as soon as its dataset's
# generation is bumped (a new partition landed), so these only bound staleness when the
# writer does not notify (see crypto_assets/api/pubsub.py).
DEFAULT_CACHE_TTL_S = {
    "prices_current": 5.0,
    "prices_historical": 60.0,
    "ohlcv": 60.0,
    "derivatives": 60.0,
    "sentiment": 30.0,
    "sentiment_stock": 30.0,
    "sentiment_crypto": 30.0,
    "narratives": 60.0,
    "regime": 60.0,
    "fear_greed": 300.0,
    "news": 30.0,
    "technical": 30.0,
    "ml_current": 30.0,
    "ml_bulk": 120.0,
    "health": 10.0,
    "symbols": 300.0,
}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RATE = re.compile(r"^\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?$")


class ConfigError(ValueError):
    """The environment configures the API wrongly; the message names the variable."""


@dataclass(frozen=True)
class ApiKey:
    """A key is known by the sha256 of its text; the text itself is never stored."""

    tier: str
    sha256: str

    @property
    def key_id(self) -> str:
        """Short, non-secret identifier for logs and rate-limit buckets."""
        return self.sha256[:12]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key_entries(text: str, origin: str) -> tuple[ApiKey, ...]:
    """`tier:sha256hex` entries separated by commas or new lines; `#` starts a comment."""
    keys = []
    for raw in re.split(r"[,\n]", text):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        tier, sep, digest = entry.partition(":")
        tier, digest = tier.strip().lower(), digest.strip().lower()
        if not sep or tier not in TIERS:
            raise ConfigError(f"{origin}: entry {entry[:20]!r}... must be 'tier:sha256hex' with tier in {TIERS}")
        if not _HEX64.match(digest):
            raise ConfigError(f"{origin}: the {tier} entry is not a 64-hex sha256 digest (store hashes, not keys)")
        keys.append(ApiKey(tier, digest))
    return tuple(keys)


def parse_rate_limits(text: str) -> dict[str, str]:
    limits = dict(DEFAULT_RATE_LIMITS)
    for raw in text.split(","):
        if not raw.strip():
            continue
        tier, sep, rate = raw.partition("=")
        tier, rate = tier.strip().lower(), rate.strip()
        if not sep or tier not in TIERS or not _RATE.match(rate):
            raise ConfigError(f"{RATE_LIMITS_ENV}: {raw.strip()!r} must be 'tier=N/second|minute|hour|day'")
        limits[tier] = rate
    return limits


def parse_flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {text[:20]!r}")


@dataclass(frozen=True)
class ApiSettings:
    warehouse_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "crypto-api"
    api_keys: tuple[ApiKey, ...] = ()
    rate_limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    auth_failure_limit: str = "30/minute"  # unknown keys, per client address
    cache_ttl_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CACHE_TTL_S))
    page_size_max: int = 5000
    redis_timeout_s: float = 0.5
    redis_retry_s: float = 5.0  # after a Redis failure, serve without it this long before retrying
    ws_poll_interval_s: float = 5.0
    ws_poll_lookback_s: float = 2 * 3600.0
    universe_ttl_s: float = 60.0
    # Signs page tokens (HMAC-SHA256). None: the app draws a random one for its process, so
    # tokens do not survive a restart nor move between processes that do not share it.
    token_secret: bytes | None = field(default=None, repr=False)
    # uvicorn's access log (one line per request, keys redacted by logs.py). On by default: it is
    # the audit trail; off buys ~10 % more requests/s on cached endpoints (docs/api.md).
    access_log: bool = True
    # After its TTL a cached response may still be served for this long, but only while one request
    # (in any worker) recomputes it, so an expiry never sends every client to the warehouse at once.
    cache_stale_s: float = 30.0
    # How long that recomputation holds its Redis lock at most (others wait for it, then compute).
    cache_lock_s: float = 10.0
    # After start-up: gc.collect(); gc.freeze(), so full collections skip the ~150k start-up objects.
    freeze_heap: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> ApiSettings:
        env = os.environ if env is None else env
        keys = parse_key_entries(env.get(KEYS_ENV, ""), KEYS_ENV)
        path = env.get(KEYS_FILE_ENV)
        if path:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
            keys += parse_key_entries(text, f"{KEYS_FILE_ENV} ({path})")
        values = dict(
            warehouse_url=env.get("CRYPTO_WAREHOUSE_URL") or None,
            redis_url=env.get(REDIS_URL_ENV) or None,
            redis_prefix=env.get(PREFIX_ENV) or "crypto-api",
            api_keys=keys,
            rate_limits=parse_rate_limits(env.get(RATE_LIMITS_ENV, "")),
        )
        if env.get(ACCESS_LOG_ENV):
            values["access_log"] = parse_flag(env[ACCESS_LOG_ENV], ACCESS_LOG_ENV)
        if env.get(POLL_ENV):
            values["ws_poll_interval_s"] = float(env[POLL_ENV])
        secret = env.get(TOKEN_SECRET_ENV)
        if secret:
            if len(secret) < TOKEN_SECRET_MIN_CHARS:
                raise ConfigError(f"{TOKEN_SECRET_ENV} must be at least {TOKEN_SECRET_MIN_CHARS} characters "
                                  "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
            values["token_secret"] = secret.encode("utf-8")
        values.update(overrides)
        return cls(**values)

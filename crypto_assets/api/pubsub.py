"""Tell the API that a partition landed: bump the dataset's cache generation and, for prices,
publish the new observations to the WebSocket feed.

Called by the writer AFTER the partition's transaction committed (so a subscriber that
reacts by querying the warehouse sees the rows):

    from crypto_assets.api.pubsub import publish_price_observations
    wh.replace_window(PRICE_OBSERVATIONS, df, start, end)
    publish_price_observations(df)            # REDIS_URL from the environment

Redis is optional: with REDIS_URL unset, Redis down, or the `api` extra not installed, these
functions log a warning and return None. They never raise for Redis problems, so a feed
outage can never fail a price run. Importing this module needs neither FastAPI nor redis.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "crypto-api"
PRICE_DATASET = "price_observations"
PRICE_FIELDS = ("symbol", "observed_at", "price_usd", "market_cap_usd", "volume_24h_usd", "source", "ingested_at")
MESSAGE_ROWS = 1000  # rows per published message: keeps one message well under a MB
DEFAULT_MAX_AGE = timedelta(hours=2)  # older rows (backfills) bump the cache but are not pushed


def price_channel(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:feed:{PRICE_DATASET}"


def generation_key(prefix: str, dataset: str) -> str:
    """Counter bumped on every write of `dataset`; cached responses remember the value they saw."""
    return f"{prefix}:gen:{dataset}"


def _prefix(prefix: str | None) -> str:
    return prefix or os.environ.get("CRYPTO_API_REDIS_PREFIX") or DEFAULT_PREFIX


def _client(redis_url: str | None):
    url = redis_url or os.environ.get("REDIS_URL")
    if not url:
        log.info("REDIS_URL is not set: the API is not notified of new partitions")
        return None
    try:
        import redis
    except ImportError:
        log.warning("the redis package is missing (pip install 'crypto-assets[api]'); not notifying the API")
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)


def price_messages(df: pd.DataFrame, *, now=None, max_age: timedelta | None = DEFAULT_MAX_AGE) -> list[bytes]:
    """The feed messages for a written frame of price observations (recent rows only)."""
    from crypto_assets.api import render

    rows = df.loc[:, [c for c in PRICE_FIELDS if c in df.columns]].copy()
    rows["observed_at"] = pd.to_datetime(rows["observed_at"], utc=True)
    if max_age is not None:
        now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
        rows = rows[rows["observed_at"] >= now - max_age]
    rows = rows.sort_values(["observed_at", "symbol"], kind="stable")
    return [
        render.dumps({"type": PRICE_DATASET, "rows": render.records(rows.iloc[i : i + MESSAGE_ROWS])})
        for i in range(0, len(rows), MESSAGE_ROWS)
    ]


def notify_partition_written(dataset: str, redis_url: str | None = None, *, prefix: str | None = None,
                             messages: list[bytes] = ()) -> int | None:
    """Bump `dataset`'s cache generation and publish `messages` on its feed channel, in one
    round trip. Returns how many subscribers received the messages, None when not notified."""
    client = _client(redis_url)
    if client is None:
        return None
    prefix = _prefix(prefix)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.incr(generation_key(prefix, dataset))
        for message in messages:
            pipe.publish(f"{prefix}:feed:{dataset}", message)
        results = pipe.execute()
        return int(sum(results[1:]))
    except Exception as exc:  # redis errors of any kind: never fail the writer
        log.warning("could not notify the API of a new %s partition: %s: %s", dataset, type(exc).__name__, exc)
        return None
    finally:
        client.close()


def publish_price_observations(df: pd.DataFrame, redis_url: str | None = None, *, prefix: str | None = None,
                               max_age: timedelta | None = DEFAULT_MAX_AGE) -> int | None:
    """After a price partition write: invalidate cached price responses and push the frame's
    recent observations (observed within `max_age`) to `WS /ws/prices` subscribers."""
    try:
        messages = price_messages(df, max_age=max_age) if len(df) else []
    except ImportError:
        log.warning("orjson is missing (pip install 'crypto-assets[api]'); not publishing prices")
        messages = []
    return notify_partition_written(PRICE_DATASET, redis_url, prefix=prefix, messages=messages)

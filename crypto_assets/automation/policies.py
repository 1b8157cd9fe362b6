"""Freshness policies and automation conditions, applied to every asset from this one place.

- Hourly datasets: warn after 2 h, fail after 4 h without a materialization. The asset-level
  policy is not partition-aware (a backfill of an old hour resets it), so each hourly asset
  also has a `latest_partition_fresh` check (see crypto_assets/checks/freshness.py).
- Raw hourly prices: a 5-minute cron for the current partition, never while a run of it is in
  progress. News/social run from their trailing-window schedules (they re-fetch the last hours
  to catch late articles); macro and on-chain from their schedules (6-hourly / daily).
- Downstream assets: eager, widened from the latest partition only to the last 48 hours so that
  late or backfilled upstream partitions flow down too, and never while a required parent
  partition is missing or in progress. History otherwise goes through backfills.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

AC = dg.AutomationCondition

HOURLY_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(hours=2), fail_window=timedelta(hours=4))
# Daily sources publish once a day (macro: not at weekends); a day and a half is late, three is broken.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(hours=36), fail_window=timedelta(hours=72))
REFERENCE_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(days=7), fail_window=timedelta(days=30))

HOURLY_DATASETS = (
    "price_observations",
    "ohlcv_bars",
    "news_articles",
    "social_posts",
    "sentiment_scores",
    "technical_indicators",
    "ml_features",
)
DAILY_DATASETS = ("macro_series", "onchain_metrics")

LIVE_CRON = "*/5 * * * *"


def live_cron_condition(cron: str = LIVE_CRON) -> dg.AutomationCondition:
    """The current partition, once per cron tick, not while a run of it is in progress.

    Unlike `on_cron`, it does not wait for every dependency to update since the tick:
    `coin_universe` changes rarely and must not hold the live prices back.
    """
    return (
        AC.in_latest_time_window()
        & AC.cron_tick_passed(cron).since_last_handled()
        & ~AC.in_progress()
        & ~AC.any_deps_missing()
    ).with_label(f"live: current partition every tick of {cron}")


def eager_with_lookback(hours: int = 48) -> dg.AutomationCondition:
    return AC.eager().replace(
        "in_latest_time_window", AC.in_latest_time_window(lookback_delta=timedelta(hours=hours))
    ).with_label(f"eager over the last {hours} h")


AUTOMATION = {
    "price_observations": live_cron_condition(),
    "ohlcv_bars": eager_with_lookback(),
    "sentiment_scores": eager_with_lookback(),
    "technical_indicators": eager_with_lookback(),
    "ml_features": eager_with_lookback(),
}


def freshness_for(name: str) -> dg.FreshnessPolicy:
    if name in HOURLY_DATASETS:
        return HOURLY_FRESHNESS
    if name in DAILY_DATASETS:
        return DAILY_FRESHNESS
    return REFERENCE_FRESHNESS


def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
    name = spec.key.to_user_string()
    spec = dg.apply_freshness_policy(spec, freshness_for(name), overwrite_existing=True)
    if name in AUTOMATION:
        spec = spec.replace_attributes(automation_condition=AUTOMATION[name])
    return spec


def apply_policies(assets: list) -> list:
    return [a.map_asset_specs(_apply) if isinstance(a, dg.AssetsDefinition) else a for a in assets]

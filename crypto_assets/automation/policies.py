"""Freshness policies and automation conditions, applied to every asset from this one place.

Freshness (what the UI badge, alerts and `crypto-assets health` show) is judged on DATA time by
`crypto_assets.automation.freshness`: the windows below are the policy, the newest row of the
dataset is what is measured. Hourly datasets warn after 2 h and fail after 4 h without new data.

Automation (one sensor evaluates the whole graph, so a parent and its children requested in the
same tick run in the same run, in order):
- `coin_universe`: materialized when missing, refreshed weekly.
- `price_observations`: the open hour on a 5-minute cron, never while a run of it is in progress.
  News/social, macro and on-chain run from their trailing-window schedules (they re-fetch recent
  partitions to catch late items).
- Downstream assets: eager over the last 48 hours, so late or backfilled parent partitions flow
  down too. Each names its REQUIRED parents (whose partition must exist) and the parents whose
  updates TRIGGER it; an optional parent (Reddit without credentials, a daily macro or on-chain
  day that has not landed) never blocks: the missing input becomes NaN features and dq_* flags.
  Older history goes through backfills.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from crypto_assets.freshness import DATA_TIME_COLUMNS
from crypto_assets.health.states import OPTIONAL_SOURCE_ENV_KEY, OPTIONAL_SOURCE_KEY
from crypto_assets.llm.ollama import MODEL_ENV as LLM_MODEL_ENV
from crypto_assets.llm.ollama import URL_ENV as LLM_URL_ENV



def llm_configured() -> bool:
    return bool(os.environ.get(LLM_URL_ENV) and os.environ.get(LLM_MODEL_ENV))

AC = dg.AutomationCondition

HOURLY_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(hours=2), fail_window=timedelta(hours=4))
# Daily sources publish once a day (macro: not at weekends); a day and a half is late, three is broken.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(hours=36), fail_window=timedelta(hours=72))
REFERENCE_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(days=7), fail_window=timedelta(days=30))

HOURLY_DATASETS = (
    "price_observations",
    "ohlcv_bars",
    "exchange_candles",
    "derivatives_metrics",
    "news_articles",
    "social_posts",
    "sentiment_scores",
    "news_narratives",
    "technical_indicators",
    "ml_features",
    "market_regimes",
    "market_anomalies",
)
DAILY_DATASETS = ("macro_series", "onchain_metrics", "fear_greed_index")

# The live price cron. CRYPTO_LIVE_CRON overrides it (the end-to-end daemon test runs every minute).
LIVE_CRON = os.environ.get("CRYPTO_LIVE_CRON", "*/5 * * * *")
UNIVERSE_REFRESH_CRON = "0 0 * * 1"
LOOKBACK_HOURS = 48


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


def reference_condition(cron: str = UNIVERSE_REFRESH_CRON) -> dg.AutomationCondition:
    """Unpartitioned reference data: built when missing (a fresh deployment), refreshed on a cron.

    A failed build is not retried every tick (the run-failure alert reports it); the cron retries.
    """
    return (
        ((AC.missing() & ~AC.execution_failed()) | AC.cron_tick_passed(cron).since_last_handled())
        & ~AC.in_progress()
    ).with_label(f"when missing, and every tick of {cron}")


@dataclass(frozen=True)
class Parents:
    """How a downstream asset depends on its parents, for automation.

    required: parents whose mapped partitions must exist (None: every parent).
    any_of:   at least one of these must exist (optional sources: news OR social).
    triggers: parents whose updates request the asset again (None: every parent).
    """

    required: Sequence[str] | None = None
    any_of: Sequence[str] = ()
    triggers: Sequence[str] | None = None


def _assets(names: Sequence[str]) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*names)


def downstream_condition(parents: Parents = Parents(), hours: int = LOOKBACK_HOURS) -> dg.AutomationCondition:
    """`eager()` widened to the last `hours` and narrowed to the parents that matter.

    Dagster's eager() looks at the latest partition only (late and backfilled parents would not
    flow down) and waits for EVERY parent partition, which lets an optional or daily input block
    an hourly asset forever.
    """
    missing = AC.missing() & ~AC.will_be_requested()
    updated = AC.any_deps_updated()
    in_progress = AC.any_deps_in_progress()
    if parents.triggers is not None:
        updated = updated.allow(_assets(parents.triggers))
        in_progress = in_progress.allow(_assets(parents.triggers))
    blocked = AC.any_deps_match(missing)
    if parents.required is not None:
        blocked = blocked.allow(_assets(parents.required)) if parents.required else None
    if parents.any_of:
        none_present = AC.all_deps_match(missing).allow(_assets(parents.any_of)).with_label(
            f"none of {', '.join(parents.any_of)} present")
        blocked = none_present if blocked is None else (blocked | none_present)
    condition = (
        AC.in_latest_time_window(lookback_delta=timedelta(hours=hours))
        & (AC.newly_missing() | updated).since_last_handled()
        & ~in_progress
        & ~AC.in_progress()
    )
    if blocked is not None:
        condition = condition & ~blocked
    return condition.with_label(f"eager over the last {hours} h")


AUTOMATION = {
    "coin_universe": reference_condition(),
    "price_observations": live_cron_condition(),
    "ohlcv_bars": downstream_condition(Parents(required=("price_observations",),
                                               triggers=("price_observations", "exchange_candles"))),
    # Exchange candles close on the hour: at :02 fetch the hour that just closed (and the open one,
    # which has none yet). Optional for ohlcv_bars: an exchange that is down never blocks it.
    "exchange_candles": (AC.in_latest_time_window(lookback_delta=timedelta(hours=2))
                         & AC.cron_tick_passed("2 * * * *").since_last_handled()
                         & ~AC.in_progress()).with_label("hourly at :02: the hour that just closed"),
    # Funding/open interest: at :04 the hour that just closed (its history) and the open hour (the current
    # snapshot). Optional for ml_features, which reads it from the warehouse: never blocks it.
    "derivatives_metrics": (AC.in_latest_time_window(lookback_delta=timedelta(hours=2))
                            & AC.cron_tick_passed("4 * * * *").since_last_handled()
                            & ~AC.in_progress()).with_label("hourly at :04: the hour that just closed"),
    "technical_indicators": downstream_condition(),
    # Market intelligence follows the bars of the hour (their lookback is read from the warehouse, never a
    # required parent). Exchange candles and news are optional inputs of the anomalies: never blocking. News
    # does not trigger them (its schedule re-fetches 3 h every 10 min): the bars' next update picks it up.
    "market_regimes": downstream_condition(Parents(required=("ohlcv_bars",))),
    "market_anomalies": downstream_condition(Parents(required=("ohlcv_bars",),
                                                     triggers=("ohlcv_bars", "exchange_candles"))),
    # News alone drives sentiment: social posts need Reddit credentials a user may not have.
    "sentiment_scores": downstream_condition(Parents(required=(), any_of=("news_articles", "social_posts"))),
    # Bars and indicators of the hour are required; sentiment (24 h lookback), macro and on-chain are
    # optional inputs (NaN features + dq_* flags). Daily macro/on-chain updates do not re-request 48 h
    # of features: the next hour's run reads them as-of.
    "ml_features": downstream_condition(Parents(
        required=("ohlcv_bars", "technical_indicators"),
        triggers=("ohlcv_bars", "technical_indicators", "sentiment_scores"),
    )),
}


# Optional LLM narratives of the hour's news; nothing requires them (ml_features never waits on them).
# Re-requested when news lands; unchanged hours come from llm_cache without a model call. Automated
# only where an LLM is configured when the code location loads: otherwise every news run would start
# a run that does nothing.
NARRATIVES_AUTOMATION = downstream_condition(Parents(required=("news_articles",)))


def automation_for(name: str) -> dg.AutomationCondition | None:
    if name == "news_narratives":
        return NARRATIVES_AUTOMATION if llm_configured() else None
    return AUTOMATION.get(name)

# Datasets whose source a user may not have set up. Never built, they are listed as not configured
# and left out of the health average (once built, they count like every other dataset).
OPTIONAL_SOURCES = {
    "social_posts": "needs Reddit credentials (REDDIT_CLIENT_ID, ...) and its schedule switched on",
    "news_narratives": f"needs a local LLM ({LLM_URL_ENV} and {LLM_MODEL_ENV})",
}

# The environment variables that configure each optional source: while any is unset the source is
# not configured, whatever rows an earlier run (the demo's replay) left in the warehouse.
OPTIONAL_SOURCE_ENV = {
    "social_posts": ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT"),
    "news_narratives": (LLM_URL_ENV, LLM_MODEL_ENV),
}


def freshness_for(name: str) -> dg.FreshnessPolicy:
    if name in HOURLY_DATASETS:
        return HOURLY_FRESHNESS
    if name in DAILY_DATASETS:
        return DAILY_FRESHNESS
    return REFERENCE_FRESHNESS


FRESHNESS_BADGE_NOTE = ("**Freshness policy**: the badge's state (Passed / Warning / Failed) is judged on DATA "
                        "time, not on the time since the last materialization that the caption under it names. "
                        "It measures ")


def freshness_note(name: str) -> str:
    """What the asset's freshness badge measures, shown with the asset's metadata in the UI (Dagster's
    own caption there speaks of the last materialization, which is not what is measured)."""
    column = DATA_TIME_COLUMNS.get(name, "ingested_at")
    return (f"data time: the newest `{column}` in the warehouse table, at most now, measured every minute by "
            "data_freshness_sensor; runs that bring no new row and backfills of old hours do not make it fresh")


def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
    name = spec.key.to_user_string()
    spec = dg.apply_freshness_policy(spec, freshness_for(name), overwrite_existing=True)
    spec = spec.merge_attributes(metadata={"freshness_measures": freshness_note(name)})
    # The asset page shows the description above the freshness badge, whose caption is Dagster's
    # own ("... since last materialization"): say there what the badge's state is judged on.
    spec = spec.replace_attributes(description=f"{(spec.description or '').rstrip()}\n\n{FRESHNESS_BADGE_NOTE}"
                                   f"{freshness_note(name)}.")
    if name in OPTIONAL_SOURCES:
        spec = spec.merge_attributes(metadata={OPTIONAL_SOURCE_KEY: OPTIONAL_SOURCES[name],
                                               OPTIONAL_SOURCE_ENV_KEY: ",".join(OPTIONAL_SOURCE_ENV[name])})
    condition = automation_for(name)
    if condition is not None:
        spec = spec.replace_attributes(automation_condition=condition)
    return spec


def apply_policies(assets: list) -> list:
    return [a.map_asset_specs(_apply) if isinstance(a, dg.AssetsDefinition) else a for a in assets]

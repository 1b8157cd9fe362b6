"""Issue 12: a price backfill longer than 90 days must not turn CoinGecko's daily points into
hourly bars. Requests are cut into pieces of at most 90 days (CoinGecko answers those hourly),
and bars whose observations are spaced wider than their interval are quarantined, not stored.

Payloads: the recorded real CoinGecko market_chart bodies in data/coingecko (see its
ATTRIBUTION.md). Where a recording is served for a request it never answered, or an empty
answer is made up, the replay catalog (data/replay_over_90_days, data/replay_daily_points)
says so: those answers are CONSTRUCTED.
"""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import httpx
import pandas as pd
import pytest

from crypto_assets.assets.ingest.prices import (
    ISOLATED,
    TOO_SPARSE,
    _history,
    ohlcv_bars,
    price_observations,
    resample_observations,
)
from crypto_assets.assets.reference import coin_universe
from crypto_assets.loading import load
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.client import SourceBudgetExceeded, SourceClient
from crypto_assets.sources.coingecko import (
    MARKET_CHART_HOURLY_MAX_RANGE,
    CoinGecko,
    market_chart_pieces,
    parse_market_chart,
)
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets_tests.paths import DATA

DATA = DATA
RECORDED = DATA / "coingecko"
HOURLY = json.loads((RECORDED / "hourly_historical_prices_for_one_coin__1_http200.json").read_text())
DAILY = json.loads((RECORDED / "daily_historical_prices_for_one_coin__1_http200.json").read_text())
START = pd.Timestamp("2021-04-01", tz="UTC")  # the first HOURLY partition
END = START + pd.Timedelta(days=120)
RANGE = ("2021-04-01-00:00", "2021-07-29-23:00")  # 120 days of hourly partitions: window [START, END)
ASSETS = [coin_universe, price_observations, ohlcv_bars]


def _materialize(url: str, replay: str | None, selection, range_=None) -> dg.ExecuteInProcessResult:
    tags = ({"dagster/asset_partition_range_start": range_[0], "dagster/asset_partition_range_end": range_[1]}
            if range_ else {})
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="replay", replay_dir=str(DATA / replay) if replay else None)}
    return dg.materialize(ASSETS, selection=selection, resources=resources, tags=tags)


# -- requests ------------------------------------------------------------------------------


def test_a_range_is_asked_for_in_pieces_of_at_most_90_days():
    pieces = market_chart_pieces(START, END)
    assert pieces == [(int(START.timestamp()), int((START + pd.Timedelta(days=90)).timestamp())),
                      (int((START + pd.Timedelta(days=90)).timestamp()), int(END.timestamp()))]
    assert MARKET_CHART_HOURLY_MAX_RANGE == pd.Timedelta(days=90)
    one_year = market_chart_pieces(END - pd.Timedelta(days=365), END)
    assert len(one_year) == 5 and all(b - a <= 90 * 86400 for a, b in one_year)
    assert one_year[0][0] == int((END - pd.Timedelta(days=365)).timestamp()) and one_year[-1][1] == int(END.timestamp())
    assert all(one_year[i][1] == one_year[i + 1][0] for i in range(4))  # contiguous, nothing skipped
    assert market_chart_pieces(END - pd.Timedelta(hours=1), END) == [(int(END.timestamp()) - 3600, int(END.timestamp()))]


class ProviderByRangeLength:
    """HTTP boundary standing in for CoinGecko's documented auto-granularity: a range of more
    than 90 days gets the recorded DAILY body, any shorter one the recorded HOURLY body cut to
    the range asked for (CONSTRUCTED answers built from the two real recordings)."""

    def __init__(self):
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        lo, hi = int(request.url.params["from"]), int(request.url.params["to"])
        self.ranges.append((lo, hi))
        if hi - lo > 90 * 86400:
            return httpx.Response(200, json=DAILY)
        body = {k: [p for p in v if lo * 1000 <= p[0] <= hi * 1000] for k, v in HOURLY.items()}
        return httpx.Response(200, json=body)


def test_market_chart_range_makes_only_hourly_requests_and_merges_them():
    provider = ProviderByRangeLength()
    gecko = CoinGecko(mode="live")
    gecko._client = gecko.make_client(transport=httpx.MockTransport(provider), sleep=lambda s: None)
    points = parse_market_chart(gecko.market_chart_range("bitcoin", START, END))
    assert len(provider.ranges) == 2 and all(hi - lo <= 90 * 86400 for lo, hi in provider.ranges)
    assert gecko.client.requests_made == 2
    # Every recorded hourly point in the range, once (the shared boundary second is not doubled).
    recorded = [p for p in HOURLY["prices"] if START.timestamp() * 1000 <= p[0] <= END.timestamp() * 1000]
    assert len(points) == len(recorded) and points.observed_at.is_unique
    assert points.observed_at.diff().median() < pd.Timedelta(minutes=90)


def test_a_backfill_that_needs_more_requests_than_the_budget_fails_before_the_first():
    # The run's request budget (resources/sources.yaml, here cut to 5): 2 coins x 3 pieces of a
    # 200-day window need 6, so the run fails before asking anything, saying how far to cut.
    universe = pd.DataFrame({"symbol": ["BTC", "ETH"], "coingecko_id": ["bitcoin", "ethereum"]})
    provider = ProviderByRangeLength()
    gecko = CoinGecko(mode="live")
    spec = dataclasses.replace(source_spec("coingecko"), max_requests_per_run=5)
    gecko._client = SourceClient(spec, transport=httpx.MockTransport(provider), sleep=lambda s: None)
    with pytest.raises(SourceBudgetExceeded, match=r"needs 6 requests \(2 coins x 3 pieces .* backfill at most 180 days"):
        _history(gecko, universe, END - pd.Timedelta(days=200), END, {})
    assert provider.ranges == []  # nothing was asked for
    # Within the budget it goes through: 2 coins x 2 pieces.
    _history(gecko, universe, START, END, {})
    assert len(provider.ranges) == 4


# -- the backfill, end to end --------------------------------------------------------------


@pytest.mark.slow
def test_a_120_day_backfill_stores_hourly_bars_from_hourly_points_only(sqlite_url):
    """Before issue 12 the run asked for the 120 days in one request, got daily points (the
    catalog's first route) and stored them as 1h bars 24 h apart. Now it asks for two pieces of
    at most 90 days (the other routes): the hourly recording lands, the daily points never do.
    (That the pieces were asked for shows in the data: only their routes serve hourly points.)"""
    assert _materialize(sqlite_url, None, ["coin_universe"]).success
    result = _materialize(sqlite_url, "replay_over_90_days", ["price_observations", "ohlcv_bars"], RANGE)
    assert result.success

    prices = load("price_observations", START, END, symbols=["BTC"], warehouse_url=sqlite_url)
    recorded = pd.to_datetime([p[0] for p in HOURLY["prices"]], unit="ms", utc=True)
    assert len(prices) == ((recorded >= START) & (recorded < END)).sum() > 700
    daily_times = set(pd.to_datetime([p[0] for p in DAILY["prices"]], unit="ms", utc=True))
    assert not daily_times & set(prices.observed_at)  # no daily point was stored

    bars = load("ohlcv_bars", START, END, symbols=["BTC"], warehouse_url=sqlite_url)
    assert set(bars.interval) == {"1h"} and len(bars) > 700
    assert bars.bar_start.min() >= pd.Timestamp("2021-04-15 15:00", tz="UTC")  # where the hourly points begin
    spacing = bars.sort_values("bar_start").bar_start.diff().dropna()
    assert spacing.max() <= pd.Timedelta(hours=3)  # hourly bars, not bars 24 h apart
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    assert not (quarantine.asset == "ohlcv_bars").any()


@pytest.mark.slow
def test_daily_points_are_quarantined_not_stored_as_hourly_bars(sqlite_url):
    """A provider that answers daily even for short ranges (CONSTRUCTED, data/replay_daily_points):
    the observations are what the provider published and land as observations; no bar is made
    of them, each is quarantined with the reason and its spacing."""
    assert _materialize(sqlite_url, None, ["coin_universe"]).success
    # 45 days (one request per coin: the provider breaks its own rule here, not our chunking).
    result = _materialize(sqlite_url, "replay_daily_points", ["price_observations", "ohlcv_bars"],
                          ("2021-04-01-00:00", "2021-05-15-23:00"))
    assert result.success
    prices = load("price_observations", START, END, symbols=["BTC"], warehouse_url=sqlite_url)
    assert len(prices) == 46  # the recording's daily points of 1 Apr .. 15 May
    assert load("ohlcv_bars", START, END, warehouse_url=sqlite_url).empty
    quarantine = load("quarantine", warehouse_url=sqlite_url)
    rejected = quarantine[quarantine.asset == "ohlcv_bars"]
    assert len(rejected) == 46 and set(rejected.reason) == {TOO_SPARSE}
    assert json.loads(rejected.record.iloc[0])["spacing"].startswith("1 days")
    meta = result.asset_materializations_for_node("ohlcv_bars")
    assert sum(m.metadata["observations_quarantined"].value for m in meta[:1]) == 46


# -- the bar rule itself ---------------------------------------------------------------------


def _observations(payload: dict) -> pd.DataFrame:
    return parse_market_chart(payload).assign(symbol="BTC")


def test_recorded_hourly_points_make_hourly_bars_and_daily_points_none():
    rejects = Rejects("ohlcv_bars", "test")
    hourly = resample_observations(_observations(HOURLY), rejects)
    assert set(hourly.interval) == {"1h"} and len(hourly) > 700 and len(rejects) == 0

    daily = resample_observations(_observations(DAILY), rejects)
    assert daily.empty and rejects.by_reason() == {TOO_SPARSE: len(DAILY["prices"])}


def test_an_observation_far_from_any_other_is_isolated():
    # The recorded hourly points plus one recorded daily point 59 days before them.
    rejects = Rejects("ohlcv_bars", "test")
    obs = _observations(HOURLY)
    lone = _observations(DAILY).iloc[[0]]
    bars = resample_observations(pd.concat([obs, lone], ignore_index=True), rejects)
    assert set(bars.interval) == {"1h"} and bars.bar_start.min() >= pd.Timestamp("2021-04-15", tz="UTC")
    assert rejects.by_reason() == {ISOLATED: 1}

    # One observation alone in the run (an hourly partition): judged by stored neighbours.
    rejects = Rejects("ohlcv_bars", "test")
    one = obs.iloc[[100]]
    near = obs.iloc[[99, 101]][["symbol", "observed_at"]]
    far = lone[["symbol", "observed_at"]]
    assert len(resample_observations(one, rejects, near)) == 1 and len(rejects) == 0
    assert resample_observations(one, rejects, far).empty and rejects.by_reason() == {ISOLATED: 1}
    assert len(resample_observations(one, Rejects("ohlcv_bars", "test"))) == 1  # nothing known around it

"""Simulated live market mode: the providers' parsers read its answers, every row it writes says
`simulated:<source>`, simulated and real data never share a Dagster home, and the default universe
follows the market within CoinGecko's request budget."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from crypto_assets.assets.ingest.derivatives import collect, derivatives_metrics
from crypto_assets.assets.ingest.exchange_bars import exchange_candles
from crypto_assets.assets.ingest.news import news_articles
from crypto_assets.assets.ingest.prices import price_observations
from crypto_assets.assets.reference import (
    DEFAULT_TOP_N, catalog_universe, coin_universe, default_top_n, price_request_budget,
)
from crypto_assets.loading import load
from crypto_assets.news.feeds import RssFeeds, load_feed_catalog
from crypto_assets.news.guardian import GuardianContent
from crypto_assets.partitions import HOURLY
from crypto_assets.sources.catalog import source_spec
from crypto_assets.sources.coingecko import MAX_PER_PAGE, CoinGecko, parse_market_chart, parse_markets
from crypto_assets.sources.exchanges import Exchanges
from crypto_assets.sources.simulated import MARKER, SimulationMixingError, check_separation, prices
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource


@pytest.fixture
def simulated_env(tmp_path, monkeypatch) -> str:
    """A dedicated DAGSTER_HOME and warehouse, as simulated mode requires."""
    url = f"delta://{tmp_path / 'warehouse'}"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRYPTO_WAREHOUSE_URL", url)
    return url


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


# -- the market and the parsers -----------------------------------------------------------------

def test_prices_are_a_seeded_walk_that_every_process_sees_alike():
    t0 = int(pd.Timestamp("2026-03-01 12:00", tz="UTC").value // 1_000_000)
    minutes = np.arange(t0, t0 + 3 * 86_400_000, 60_000)
    path = prices("bitcoin", minutes)
    assert (path > 0).all() and np.array_equal(path, prices("bitcoin", minutes))  # deterministic
    steps = np.diff(np.log(path))
    assert steps.std() > 0 and np.abs(steps).max() < 0.01  # moves every minute, no jumps across midnight
    assert not np.array_equal(path, prices("ethereum", minutes))


def test_coingecko_answers_the_current_ranking_and_charts(simulated_env):
    coingecko = CoinGecko(mode="simulated")
    top = parse_markets(coingecko.markets(per_page=MAX_PER_PAGE, max_pages=2))
    assert len(top) == 2 * MAX_PER_PAGE and top.market_cap_rank.tolist() == list(range(1, 2 * MAX_PER_PAGE + 1))
    assert top.market_cap_usd.is_monotonic_decreasing
    assert (now() - top.observed_at).abs().max() < pd.Timedelta(minutes=1)  # answered for the current time
    asked = parse_markets(coingecko.markets(["bitcoin", "simulated-coin-007"]))
    assert sorted(asked.provider_symbol) == ["BTC", "SIM007"]
    chart = parse_market_chart(coingecko.market_chart_range("bitcoin", now() - pd.Timedelta(hours=2), now()))
    assert 20 <= len(chart) <= 25 and chart.price_usd.gt(0).all()  # 5-minute points of the last 2 h
    assert coingecko.provenance == "simulated:coingecko"


def test_exchange_candles_derivatives_and_news_parse(simulated_env):
    exchanges = Exchanges(mode="simulated")
    binance = exchanges.open("binance")
    markets = binance.map(["BTC", "SIM001"], ("USDT",))
    assert set(markets) == {"BTC", "SIM001"}
    assert exchanges.open("kraken").map(["BTC"], ("USD",)) == {}  # binance alone lists the simulated coins
    hour = now().floor("h")
    result = binance.closed_candles(markets["SIM001"], hour - pd.Timedelta(hours=3), hour + pd.Timedelta(hours=1))
    assert result.candles.bar_start.tolist() == [hour - pd.Timedelta(hours=h) for h in (3, 2, 1)]
    assert result.open_dropped == 1  # the open hour's candle, as on the real exchange
    assert (result.candles.high >= result.candles[["open", "close"]].max(axis=1)).all()

    frame, meta = collect(exchanges, ["BTC", "ETH"], hour - pd.Timedelta(hours=1), hour + pd.Timedelta(hours=1))
    assert not meta["run_failures"] and not meta["run_exchange_errors"]
    kinds = set(frame.kind)
    assert {"funding_snapshot", "open_interest", "open_interest_history"} <= kinds, kinds

    results = RssFeeds(mode="simulated").fetch_all(load_feed_catalog()[:2])
    assert [r.status for r in results] == ["ok", "ok"]
    articles = [a for r in results for a in r.articles]
    assert len({a["article_id"] for a in articles}) == len(articles) == 6  # unique per feed
    assert all(a["published_at"] >= hour.to_pydatetime() for a in articles)


def test_every_row_written_in_simulated_mode_says_synthetic(simulated_env):
    """The open hour's ingestion in simulated mode: each row's `source` is simulated:<source>."""
    url = simulated_env
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="simulated"), "exchanges": Exchanges(mode="simulated"),
                 "rss": RssFeeds(mode="simulated"), "guardian": GuardianContent(mode="simulated", enabled=False)}
    assets = [coin_universe, price_observations, exchange_candles, derivatives_metrics, news_articles]
    dg.materialize(assets, selection=["coin_universe"], resources=resources,
                   run_config={"ops": {"coin_universe": {"config": {"refresh_top_n": 12}}}})
    open_hour = HOURLY.get_partition_key_for_timestamp(now().timestamp())
    closed_hour = HOURLY.get_partition_key_for_timestamp(now().timestamp() - 3600)  # candles close on the hour
    dg.materialize(assets, selection=["price_observations", "news_articles"], resources=resources,
                   partition_key=open_hour)
    dg.materialize(assets, selection=["exchange_candles", "derivatives_metrics"], resources=resources,
                   partition_key=closed_hour)
    universe = load("coin_universe", warehouse_url=url)
    assert len(universe) >= 12 and set(universe.source) <= {"resources/coins.csv", "simulated:coingecko"}
    for table in ("price_observations", "exchange_candles", "derivatives_metrics", "news_articles"):
        rows = load(table, warehouse_url=url)
        assert len(rows), table
        assert rows.source.str.startswith("simulated:").all(), (table, sorted(set(rows.source)))
    assert set(load("price_observations", warehouse_url=url).symbol) == set(universe.symbol)


# -- never mixed with real data ------------------------------------------------------------------

def test_simulated_mode_needs_its_own_home_and_warehouse(tmp_path):
    with pytest.raises(SimulationMixingError, match="DAGSTER_HOME and CRYPTO_WAREHOUSE_URL"):
        check_separation("simulated", home="", warehouse_url="delta:///x")
    with pytest.raises(SimulationMixingError, match="DAGSTER_HOME and CRYPTO_WAREHOUSE_URL"):
        check_separation("simulated", home=str(tmp_path / "home"), warehouse_url="")
    used = tmp_path / "used"
    (used / "history" / "runs").mkdir(parents=True)
    (used / "history" / "runs" / "index.db").touch()  # a fresh instance's storage: not yet used
    check_separation("simulated", home=str(used), warehouse_url="delta:///sim")
    real = tmp_path / "real"
    (real / "history" / "runs").mkdir(parents=True)
    (real / "history" / "runs" / "0b5e1c2a-run.db").touch()  # a real deployment's home: it has run
    with pytest.raises(SimulationMixingError, match="real deployment"):
        check_separation("simulated", home=str(real), warehouse_url="delta:///sim")
    assert not (real / MARKER).exists()


def test_a_simulated_home_refuses_every_other_mode_and_another_warehouse(tmp_path, monkeypatch):
    home = tmp_path / "home"
    check_separation("simulated", home=str(home), warehouse_url="delta:///sim")
    assert (home / MARKER).read_text().strip() == "delta:///sim"
    check_separation("simulated", home=str(home), warehouse_url="delta:///sim")  # again: fine
    with pytest.raises(SimulationMixingError, match="not delta:///real"):
        check_separation("simulated", home=str(home), warehouse_url="delta:///real")
    for mode in ("live", "replay"):
        with pytest.raises(SimulationMixingError, match="holds simulated data"):
            check_separation(mode, home=str(home), warehouse_url="delta:///sim")
    # Through the sources themselves: no client of another mode opens on a simulated home.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with pytest.raises(SimulationMixingError):
        CoinGecko(mode="replay").make_client()
    with pytest.raises(SimulationMixingError):
        Exchanges(mode="replay").open("binance")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "other"))
    CoinGecko(mode="replay").make_client().close()  # an unmarked home is not affected


# -- the universe follows the market ---------------------------------------------------------------

def test_the_default_universe_is_the_top_coins_in_simulated_and_live_mode_only(simulated_env):
    assert default_top_n("live") == default_top_n("simulated") == DEFAULT_TOP_N == 320
    assert default_top_n("replay") == 0  # make demo: resources/coins.csv alone
    url = simulated_env
    dg.materialize([coin_universe], resources={"io_manager": WarehouseIOManager(url=url),
                                               "coingecko": CoinGecko(mode="simulated")})
    universe = load("coin_universe", warehouse_url=url)
    catalog = set(catalog_universe().symbol)
    assert catalog <= set(universe.symbol)
    assert universe.market_cap_rank.notna().sum() == DEFAULT_TOP_N
    assert DEFAULT_TOP_N <= len(universe) <= DEFAULT_TOP_N + len(catalog)


def test_live_prices_of_the_default_universe_fit_coingeckos_budget(simulated_env):
    """The open hour's snapshot asks /coins/markets for the whole universe in batches of 250 ids:
    counted on the client, then held against the planned rate and the provider's ~30 calls/min."""
    coins = DEFAULT_TOP_N + len(catalog_universe())  # the largest default universe
    budget = price_request_budget(coins, ticks_per_hour=12)  # the 5-minute live cron
    coingecko = CoinGecko(mode="simulated")
    ids = [f"simulated-coin-{n:03d}" for n in range(1, coins + 1)]
    assert len(parse_markets(coingecko.markets(ids))) == coins
    assert coingecko.client.requests_made == budget["per_tick"] == 2
    planned_per_minute = 60 / source_spec("coingecko").min_interval_s
    assert budget["per_minute"] == pytest.approx(0.4)
    assert budget["per_minute"] <= planned_per_minute <= 30
    # A demo key's 10,000 calls/month cover a one-page universe at this cadence, not two pages.
    assert price_request_budget(MAX_PER_PAGE)["per_month"] <= 10_000 < budget["per_month"]


def test_sources_without_a_simulation_have_no_data_and_fail_no_run(simulated_env):
    """Macro, on-chain and Fear & Greed have no simulation: like replay without a recording, their
    daily runs land empty instead of failing (a soak must not count them as failures), and write
    no real data."""
    from crypto_assets.assets.ingest.fear_greed import ASSETS as FEAR_GREED
    from crypto_assets.assets.ingest.macro import ASSETS as MACRO
    from crypto_assets.assets.ingest.onchain import ASSETS as ONCHAIN
    from crypto_assets.resources import build_resources

    day = (now() - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    for assets in (MACRO, ONCHAIN, FEAR_GREED):
        result = dg.materialize(assets, resources=build_resources(mode="simulated", warehouse_url=simulated_env),
                                partition_key=day)
        assert result.success
        table = assets[0].key.to_user_string()
        assert load(table, warehouse_url=simulated_env).empty, table

"""Every asset of the graph materializes on both warehouses, MySQL included (issue 11, item 12):
news_articles once failed on MySQL only (a 204-character quarantine key), because the MySQL
tests ran the price and feature assets but never news."""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd
import pytest

from crypto_assets import load
from crypto_assets.assets import all_assets
from crypto_assets.news.feeds import RssFeeds
from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

warnings.filterwarnings("ignore", category=dg.BetaWarning)

PRICE_HOURS = ("2021-05-15-10:00", "2021-05-15-11:00")  # inside the recorded CoinGecko window
NEWS_HOUR = "2023-03-13-10:00"  # the project's recorded feeds: broken ones and undated items
BUILT_HOUR = "2023-03-13-11:00"  # a feed constructed here (test input, not a recording)
H1 = pd.Timestamp("2023-03-13 11:00", tz="UTC")
LONG_URL = "https://www.coindesk.com/markets/2023/03/13/" + "bitcoin-rallies-as-usdc-regains-its-peg-" * 40
FEED = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>Bitcoin 🚀 rallies as USDC regains its peg</title><link>{LONG_URL}</link>"
        "<pubDate>Mon, 13 Mar 2023 11:15:00 GMT</pubDate><description>Bitcoin and ether rose.</description></item>"
        "</channel></rss>")
RUNS = {  # asset -> (partition, range)
    "coin_universe": (None, None),
    "price_observations": (None, PRICE_HOURS),
    "ohlcv_bars": (None, PRICE_HOURS),
    "technical_indicators": (None, PRICE_HOURS),
    "ml_features": (None, PRICE_HOURS),
    "news_articles": (NEWS_HOUR, None),
    "social_posts": (NEWS_HOUR, None),
    "sentiment_scores": (BUILT_HOUR, None),
    "macro_series": (None, ("2020-01-01", "2020-01-02")),
    "onchain_metrics": (None, ("2022-12-26", "2022-12-30")),
    # the window the recorded exchange candles cover (binance, kraken, okx: BTC/USDT 1h)
    "exchange_candles": (None, ("2024-01-30-16:00", "2024-01-30-18:00")),
    # optional, off without CRYPTO_LLM_URL/CRYPTO_LLM_MODEL: materialized with an LLM in test_narratives_asset.py
    "news_narratives": (BUILT_HOUR, None),
    # the hour of the recorded bybit funding snapshot (2024-11-04 14:21 UTC)
    "derivatives_metrics": ("2024-11-04-14:00", None),
    # from the recorded bars (their lookback hours are empty there: regimes warm up, scores lack a baseline)
    "market_regimes": (None, PRICE_HOURS),
    "market_anomalies": (None, PRICE_HOURS),
    # no recording exists: replay answers 404 and the asset writes no row (test_fear_greed.py)
    "fear_greed_index": ("2021-05-14", None),
}


def test_every_asset_materializes_on_the_warehouse(warehouse_url, tmp_path, monkeypatch):
    assert set(RUNS) == {k.to_user_string() for a in all_assets() for k in a.keys}, "a new asset: add it here"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "replay" / "rss"
    folder.mkdir(parents=True)
    (folder / "catalog.yaml").write_text("routes:\n  - url: https://www.coindesk.com/arc/outboundfeeds/rss/\n"
                                         "    file: coindesk.xml\n")
    (folder / "coindesk.xml").write_text(FEED)
    get_warehouse.cache_clear()
    graph = ProjectGraph(warehouse_url)
    with dg.instance_for_test() as instance:
        for asset in ("coin_universe", "price_observations", "ohlcv_bars", "technical_indicators", "news_articles",
                      "social_posts", "macro_series", "onchain_metrics", "exchange_candles",
                      "derivatives_metrics"):
            partition, range_ = RUNS[asset]
            result = graph.materialize(instance, [asset], partition=partition, range_=range_, raise_on_error=False)
            assert result.success, (asset, [str(e.event_specific_data)[:800] for e in result.all_events
                                            if e.is_failure])
        quarantined = load("quarantine", warehouse_url=warehouse_url)
        news_keys = quarantined[quarantined.asset == "news_articles"].record_key.dropna()
        assert news_keys.str.len().max() > 191  # the kind of key MySQL refused

        # news with a real row (a long URL, a 4-byte character) and sentiment scored on it
        graph.resources["rss"] = RssFeeds(mode="replay", replay_dir=str(tmp_path / "replay"))
        for asset in ("news_articles", "sentiment_scores"):
            result = graph.materialize(instance, [asset], partition=BUILT_HOUR, raise_on_error=False)
            assert result.success, (asset, [str(e.event_specific_data)[:800] for e in result.all_events
                                            if e.is_failure])
        result = graph.materialize(instance, ["ml_features"], range_=PRICE_HOURS, raise_on_error=False)
        assert result.success
        for asset in ("market_regimes", "market_anomalies"):
            result = graph.materialize(instance, [asset], range_=RUNS[asset][1], raise_on_error=False)
            assert result.success, (asset, [str(e.event_specific_data)[:800] for e in result.all_events
                                            if e.is_failure])
            assert len(load(asset, warehouse_url=warehouse_url)) > 0, asset
        result = graph.materialize(instance, ["fear_greed_index"], partition=RUNS["fear_greed_index"][0],
                                   raise_on_error=False)
        assert result.success

    news = load("news_articles", H1, H1 + pd.Timedelta("1h"), warehouse_url=warehouse_url)
    assert news.title.tolist() == ["Bitcoin 🚀 rallies as USDC regains its peg"] and len(news.url.iloc[0]) > 1000
    scores = load("sentiment_scores", H1, H1 + pd.Timedelta("1h"), warehouse_url=warehouse_url)
    assert scores.item_id.tolist() == news.article_id.tolist()
    for name in ("coin_universe", "price_observations", "ohlcv_bars", "technical_indicators", "ml_features",
                 "macro_series", "onchain_metrics", "exchange_candles"):
        assert len(load(name, warehouse_url=warehouse_url)) > 0, name

"""Routing of sentiment by market (issue 14): which feeds are stock-market news, which model scores them."""

from __future__ import annotations

import pandas as pd

from crypto_assets.news.feeds import load_feed_catalog
from crypto_assets.sentiment.market import CRYPTO, STOCK, feed_markets, market_types, scorer_kind
from crypto_assets.sentiment.model import SentimentModel


def test_every_catalog_feed_gets_the_market_of_its_category():
    markets = feed_markets()
    for feed in load_feed_catalog():
        assert markets[feed.id] == {"finance": STOCK, "crypto": CRYPTO}[feed.category], feed.id
    assert markets["cnbc_top"] == STOCK and markets["fed_press"] == STOCK and markets["coindesk"] == CRYPTO
    assert markets["guardian"] == CRYPTO  # queried with crypto keywords only


def test_unknown_or_missing_feeds_default_to_crypto():
    got = market_types(pd.Series(["wsj_markets", "no-such-feed", None, float("nan"), "decrypt"]))
    assert got.tolist() == [STOCK, CRYPTO, CRYPTO, CRYPTO, CRYPTO]


def test_scorer_kind_per_item():
    assert scorer_kind("news", STOCK) == "news"
    assert scorer_kind("news", CRYPTO) == "crypto_news"
    assert scorer_kind("social", CRYPTO) == "social"


def test_crypto_news_model_is_configurable_and_defaults_to_cryptobert(monkeypatch):
    monkeypatch.delenv("CRYPTO_SENTIMENT_CRYPTO_NEWS_MODEL", raising=False)
    assert SentimentModel().model_name("crypto_news") == "ElKulako/cryptobert"
    assert SentimentModel().model_name("news") == "ProsusAI/finbert"
    monkeypatch.setenv("CRYPTO_SENTIMENT_CRYPTO_NEWS_MODEL", "/models/cryptobert")
    assert SentimentModel().model_name("crypto_news") == "/models/cryptobert"
    assert SentimentModel(crypto_news_model="vader").choose("crypto_news").is_fallback is False

"""Which market an item's sentiment is about: `stock` (markets/macro news) or `crypto`.

News articles are routed by the catalog category of the feed that carried them
(`resources/news_feeds.yaml`: `finance` -> stock, `crypto` -> crypto). The Guardian is queried with
crypto keywords only (see the catalog's `guardian.query`), so its articles are crypto. Social posts
come from crypto subreddits: crypto. An article whose feed is not in the catalog (a feed removed
since, or an empty feed column) is crypto, the pipeline's default, and counted in run metadata.

Scorer per market (see `SentimentModel`): stock news -> the finance model (`news`, FinBERT), crypto
news -> the crypto model (`crypto_news`, CryptoBERT), social posts -> `social` (CryptoBERT).
"""

from __future__ import annotations

from functools import cache

import pandas as pd

STOCK, CRYPTO = "stock", "crypto"
MARKET_TYPES = (STOCK, CRYPTO)
_CATEGORY_MARKET = {"finance": STOCK, "crypto": CRYPTO}


@cache
def feed_markets() -> dict[str, str]:
    """feed id -> market type, from the feed catalog; the Guardian is crypto (crypto-keyword query)."""
    from crypto_assets.news.feeds import load_feed_catalog

    markets = {feed.id: _CATEGORY_MARKET.get(feed.category, CRYPTO) for feed in load_feed_catalog()}
    markets.setdefault("guardian", CRYPTO)
    return markets


def market_types(feeds: pd.Series) -> pd.Series:
    """The market type of each article, from its `feed` column (unknown or empty: crypto)."""
    known = feed_markets()
    return feeds.map(lambda f: known.get(f, CRYPTO) if isinstance(f, str) else CRYPTO).astype(object)


def known_feed(feeds: pd.Series) -> pd.Series:
    known = feed_markets()
    return feeds.map(lambda f: isinstance(f, str) and f in known).astype(bool)


def scorer_kind(item_type: str, market_type: str) -> str:
    """The SentimentModel kind that scores an item."""
    if item_type == "social":
        return "social"
    return "news" if market_type == STOCK else "crypto_news"

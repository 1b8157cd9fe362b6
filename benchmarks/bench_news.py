"""News ingestion throughput: feed parsing (feedparser + HTML stripping + canonical ids), coin
mention tagging (resources/coins.csv and a 500-coin universe), and one hour's merge + write.
Results go to benchmarks/results.json["news"].

    PYTHONPATH=. .venv/bin/python benchmarks/bench_news.py

Inputs: the real feed recordings in crypto_assets_tests/data/rss for parsing, and SYNTHETIC
texts / feeds / coin universes (labelled as such) for the scaling numbers.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks._results import measured
from crypto_assets.assets.ingest.rolling import merge_with_stored
from crypto_assets.news.feeds import Feed, parse_feed
from crypto_assets.news.mentions import MentionTagger, coin_universe_from_csv
from crypto_assets.tables.news import NEWS_ARTICLES
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import utcnow

DATA = Path(__file__).resolve().parent.parent / "crypto_assets_tests" / "data" / "rss"
FEED = Feed("bench", "Bench", "https://example.com/feed")
WORDS = ("market price rally traders said the a of in on for with after week bitcoin ethereum solana link "
         "one near etc solution ether network fees ETF $SOL BTC XRP Cardano stellar Polygon").split()


def _median(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def synthetic_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def synthetic_feed(items: int) -> bytes:
    rng = random.Random(1)
    body = "".join(
        f"<item><title>{synthetic_text(rng, 10)}</title><link>https://example.com/a/{i}?utm_source=rss</link>"
        f"<pubDate>Mon, 13 Mar 2023 10:{i % 60:02d}:00 GMT</pubDate>"
        f"<description>&lt;p&gt;{synthetic_text(rng, 40)}&lt;/p&gt;</description><dc:creator>A B</dc:creator></item>"
        for i in range(items)
    )
    return ('<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>t</title>{body}</channel></rss>").encode()


def synthetic_universe(n: int) -> pd.DataFrame:
    rng = random.Random(2)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rows = [("".join(rng.choice(letters) for _ in range(rng.randint(3, 5))), f"Coin{i}chain", f"Alias{i}|Other {i}")
            for i in range(n)]
    base = coin_universe_from_csv()
    return pd.concat([base, pd.DataFrame(rows, columns=["symbol", "name", "aliases"])], ignore_index=True)


def measure() -> dict:
    real = DATA / "encoding.rss"  # real 40-item JN.pt feed
    real_bytes = real.read_bytes()
    t_real = _median(lambda: parse_feed(FEED, real_bytes))
    feed_500 = synthetic_feed(500)
    t_syn = _median(lambda: parse_feed(FEED, feed_500), repeats=3)

    rng = random.Random(3)
    texts = [(synthetic_text(rng, 12), synthetic_text(rng, 60)) for _ in range(2000)]
    small = MentionTagger(coin_universe_from_csv())
    t_small = _median(lambda: [small.tag(*t) for t in texts], repeats=3)
    t_build = _median(lambda: MentionTagger(synthetic_universe(500)), repeats=3)
    big = MentionTagger(synthetic_universe(500))
    t_big = _median(lambda: [big.tag(*t) for t in texts], repeats=3)

    articles = parse_feed(FEED, synthetic_feed(300)).articles
    fresh = pd.DataFrame(articles).assign(source="bench", ingested_at=utcnow(), symbols_mentioned="")
    start, end = pd.Timestamp("2023-03-13 10:00", tz="UTC"), pd.Timestamp("2023-03-13 11:00", tz="UTC")
    with tempfile.TemporaryDirectory() as tmp:
        wh = open_warehouse(f"sqlite:///{tmp}/w.sqlite")
        wh.replace_window(NEWS_ARTICLES, fresh.iloc[:150], start, end)

        def merge_and_write():
            merged, _ = merge_with_stored(wh, NEWS_ARTICLES, fresh, start, end)
            wh.replace_window(NEWS_ARTICLES, merged, start, end)

        t_merge = _median(merge_and_write, repeats=5)
        wh.dispose()

    return {
        "parse_real_feed_40_items_s": round(t_real, 4),
        "parse_real_feed_items_per_s": round(40 / t_real),
        "parse_synthetic_feed_500_items_s": round(t_syn, 4),
        "parse_synthetic_items_per_s": round(500 / t_syn),
        "tag_coins_csv_universe_texts_per_s": round(len(texts) / t_small),
        "tag_520_coin_universe_texts_per_s": round(len(texts) / t_big),
        "build_tagger_520_coins_s": round(t_build, 4),
        "merge_and_write_300_articles_one_hour_s": round(t_merge, 4),
        "inputs": "parse_real: crypto_assets_tests/data/rss/encoding.rss (real); everything else SYNTHETIC "
                  "(random word texts of 12+60 words, generated feeds, 500 generated coins added to coins.csv)",
    }


def main() -> None:
    with measured("news") as numbers:
        numbers.update(measure())
    for k, v in numbers.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()

"""`crypto-assets demo` end to end: every dataset has rows in the window its summary line states,
and the news, social and sentiment rows are the recorded payloads' items (replay invents nothing).

Runs the demo's core (`build_demo`, the same steps `make demo` runs) into a temporary
DAGSTER_HOME and its embedded Delta Lake warehouse; about a minute on a 2-core machine.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from crypto_assets.demo import SHOWN, build_demo, print_summary
from crypto_assets.news.canonical import article_id, canonical_url
from crypto_assets.paths import RESOURCES_DIR
from crypto_assets.sentiment.model import DEFAULT_MODELS
from crypto_assets.tables import all_tables
from crypto_assets.warehouse.factory import open_warehouse

REPLAY = RESOURCES_DIR / "replay"
DATASETS = {"coin_universe", "price_observations", "ohlcv_bars", "news_articles", "social_posts",
            "sentiment_scores", "macro_series", "onchain_metrics", "technical_indicators", "ml_features",
            "exchange_candles", "market_regimes", "market_anomalies", "derivatives_metrics", "fear_greed_index"}


pytestmark = pytest.mark.slow  # every test here reads the demo warehouse its fixture builds (~60 s)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.delenv("CRYPTO_WAREHOUSE_URL", raising=False)
        mp.setenv("CRYPTO_SOURCE_MODE", "replay")  # restored afterwards (the demo sets it)
        mp.setenv("HF_HUB_OFFLINE", "1")
        for name in ("CRYPTO_SENTIMENT_NEWS_MODEL", "CRYPTO_SENTIMENT_SOCIAL_MODEL"):
            mp.delenv(name, raising=False)
        report = build_demo(echo=lambda _: None)
        lines: list[str] = []
        print_summary(report, out=lines.append)
        yield report, "\n".join(lines), open_warehouse(f"delta://{home / 'warehouse'}")


def test_every_dataset_has_rows_only_in_the_window_the_summary_states(demo):
    report, text, warehouse = demo
    assert report["failed_steps"] == []
    by_name = {line["dataset"]: line for line in report["datasets"]}
    assert set(by_name) == DATASETS
    tables = all_tables()
    for shown in SHOWN:
        table = tables[shown.dataset]
        stored = warehouse.read(table)
        assert len(stored) > 0, shown.dataset
        if shown.windows:
            times = pd.to_datetime(stored[table.time_column], utc=True)
            inside = pd.Series(False, index=stored.index)
            for a, b in shown.windows:
                inside |= (times >= pd.Timestamp(a, tz="UTC")) & (times < pd.Timestamp(b, tz="UTC"))
            assert inside.all(), f"{shown.dataset}: rows outside {shown.windows}"
            for a, b in shown.windows:  # every stated window holds rows of its own
                assert ((times >= pd.Timestamp(a, tz="UTC")) & (times < pd.Timestamp(b, tz="UTC"))).any(), (
                    shown.dataset, a, b)
        assert by_name[shown.dataset]["rows_in_window"] == len(stored), shown.dataset
        # the printed summary names the dataset, its row count and each window it shows
        line = next(t for t in text.splitlines() if t.startswith(f"{shown.dataset} "))
        assert str(len(stored)) in line.split() and all(f"{a} .. {b}" in line for a, b in shown.windows), line


def test_news_rows_are_the_recorded_guardian_articles(demo):
    _, _, warehouse = demo
    recorded = json.loads((REPLAY / "guardian" / "search.json").read_text())["response"]["results"]
    news = warehouse.read(all_tables()["news_articles"])
    expected = {article_id(canonical_url(r["webUrl"])): r for r in recorded}
    assert set(news.article_id) == set(expected)
    for row in news.itertuples():
        item = expected[row.article_id]
        assert row.title == item["webTitle"] and row.feed == "guardian" and row.source == "replay:guardian"
        assert row.published_at == pd.Timestamp(item["webPublicationDate"])


def test_social_rows_are_the_recorded_reddit_listing(demo):
    _, _, warehouse = demo
    listing = json.loads((REPLAY / "reddit" / "r_askreddit_new.json").read_text())
    recorded = {c["data"]["name"]: c["data"] for c in listing["data"]["children"]}
    posts = warehouse.read(all_tables()["social_posts"])
    assert set(posts.post_id) == set(recorded) and len(posts) == 100
    for row in posts.itertuples():
        item = recorded[row.post_id]
        assert row.title == item["title"] and row.subreddit == item["subreddit"] == "AskReddit"
        assert row.published_at.timestamp() == item["created_utc"] and row.source == "replay:reddit"


def test_sentiment_scores_exactly_the_recorded_texts(demo):
    _, _, warehouse = demo
    tables = all_tables()
    scores = warehouse.read(tables["sentiment_scores"])
    news, posts = warehouse.read(tables["news_articles"]), warehouse.read(tables["social_posts"])
    assert set(scores[scores.item_type == "news"].item_id) == set(news.article_id)
    assert set(scores[scores.item_type == "social"].item_id) == set(posts.post_id)
    assert scores.score.between(-1, 1).all() and scores.label.notna().all()
    # each item type is scored by its configured model, or (no model offline) by VADER, which the rows say
    for item_type in ("news", "social"):
        models = set(scores[scores.item_type == item_type].model)
        assert len(models) == 1 and models <= {"vader", DEFAULT_MODELS[item_type]}, models


def test_features_cover_the_price_window_and_say_which_inputs_were_missing(demo):
    _, text, warehouse = demo
    tables = all_tables()
    features = warehouse.read(tables["ml_features"])
    bars = warehouse.read(tables["ohlcv_bars"])
    assert set(features.symbol) == set(bars.symbol) == {"BTC"}
    assert set(bars.method) == {"resampled_observations", "coingecko_ohlc", "exchange"}
    # The exchange bars (their own window) carry real traded volume; the CoinGecko ones have none.
    exchange = bars[bars.method == "exchange"]
    assert len(exchange) > 0 and (exchange.volume > 0).all() and bars[bars.method != "exchange"].volume.isna().all()
    assert (features.dq_sentiment_present.fillna(0) == 0).all()  # no text recording in the price window
    assert (features.dq_onchain_metrics_present > 0).all()
    assert "sentiment 0/" in text and f"on-chain {len(features)}/{len(features)}" in text
    # The real Fear & Greed recording covers the price window: every feature row carries the index,
    # as known at its bar's close (14 May: 26, 15 May: 27, published at 00:00 UTC of their day).
    assert features.fng_value.notna().all() and f"fear & greed {len(features)}/{len(features)}" in text
    known = features.set_index("asof_time").fng_value
    assert set(known[known.index < pd.Timestamp("2021-05-15", tz="UTC")]) == {26.0}
    assert set(known[known.index >= pd.Timestamp("2021-05-15", tz="UTC")]) == {27.0}
    fng = warehouse.read(tables["fear_greed_index"])
    assert len(fng) == 15 and fng.source.str.contains("replay").all()


def test_every_dataset_of_the_graph_is_shown_or_said_why_not(demo):
    from crypto_assets.assets import all_assets
    from crypto_assets.demo import NOT_SHOWN

    _, text, _ = demo
    datasets = {key.to_user_string() for asset in all_assets() for key in asset.keys}
    assert datasets == {s.dataset for s in SHOWN} | set(NOT_SHOWN)
    for name in NOT_SHOWN:
        assert f"Not shown: {name}: " in text


def _archived_btc_funding() -> pd.DataFrame:
    """Binance's real BTCUSDT funding file of May 2021 as recorded for replay (the zip's CSV)."""
    import io
    import zipfile

    with zipfile.ZipFile(REPLAY / "binance_archive" / "BTCUSDT-fundingRate-2021-05.zip") as archive:
        raw = pd.read_csv(io.BytesIO(archive.read("BTCUSDT-fundingRate-2021-05.csv")))
    return pd.DataFrame({"calc_time": pd.to_datetime(raw.calc_time, unit="ms", utc=True),
                         "rate": raw.last_funding_rate.astype(float)})


def test_funding_history_of_the_price_window_comes_from_the_binance_archive(demo):
    """The demo backfills derivatives_metrics over 13-15 May 2021 from Binance's public data archive: every
    real settlement of those days lands at its settlement time (calc_time's jitter rounded off), known from
    then on, with a source that says archive."""
    _, text, warehouse = demo
    rows = warehouse.read(all_tables()["derivatives_metrics"])
    funding = rows[(rows.exchange == "binance") & (rows.kind == "funding_history")].sort_values("observed_at")
    real = _archived_btc_funding()
    real = real[(real.calc_time >= pd.Timestamp("2021-05-13", tz="UTC"))
                & (real.calc_time < pd.Timestamp("2021-05-16", tz="UTC"))]
    assert len(real) == 9 and (real.calc_time.dt.hour.isin([0, 8, 16])).all()
    assert list(funding.symbol.unique()) == ["BTC"] and (funding.source == "replay:binance_archive").all()
    observed = pd.to_datetime(funding.observed_at, utc=True).reset_index(drop=True)
    assert list(observed) == list(real.calc_time.dt.floor("h"))  # on the settlement hour, not calc_time
    assert (pd.to_datetime(funding.available_at, utc=True).reset_index(drop=True) == observed).all()
    assert list(funding.funding_rate) == list(real.rate)
    on_14_15 = observed[(observed >= pd.Timestamp("2021-05-14", tz="UTC"))
                        & (observed < pd.Timestamp("2021-05-16", tz="UTC"))]
    assert len(on_14_15) >= 6
    assert "replay:binance_archive" in text or "binance_archive" in text


def test_feature_rows_carry_the_archived_funding_rate_as_of_their_bar(demo):
    """ml_features over 14-15 May 2021 carry Binance's funding rate known at each bar's close: the newest
    settlement at or before asof_time (never a later one: no look-ahead)."""
    _, text, warehouse = demo
    features = warehouse.read(all_tables()["ml_features"]).sort_values("asof_time")
    real = _archived_btc_funding()
    settled = real.calc_time.dt.floor("h")
    assert features.deriv_funding_rate.notna().all()
    for asof, value in zip(pd.to_datetime(features.asof_time, utc=True), features.deriv_funding_rate):
        known = real.rate[settled <= asof]
        assert value == known.iloc[-1], (asof, value, known.iloc[-1])
    # At least one bar sits just before a settlement whose rate differs: it must not see the next one.
    before = [(a, v) for a, v in zip(pd.to_datetime(features.asof_time, utc=True), features.deriv_funding_rate)
              if a.hour == 7 and a.minute >= 55 and a.day == 15]
    assert before and all(v == real.rate[settled == pd.Timestamp("2021-05-15 00:00", tz="UTC")].iloc[0]
                          for _, v in before)
    assert f"funding {len(features)}/{len(features)}" in text

"""The `sentiment_scores` asset, materialized against a temporary SQLite warehouse.

Upstream rows are written into the real `news_articles` / `social_posts` tables (their specs
from the table registry); the asset then loads its partition window through the warehouse IO
manager, as in production.
"""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.enrich.sentiment import sentiment_scores
from crypto_assets.partitions import HOURLY
from crypto_assets.sentiment.model import SentimentModel
from crypto_assets.tables import table
from crypto_assets.tables.quality import QUARANTINE
from crypto_assets.tables.sentiment import SENTIMENT_SCORES
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse
from crypto_assets_tests.sentiment.test_sentiment_model import CRYPTOBERT_LABELS, FINBERT_LABELS, build_tiny_classifier
from crypto_assets_tests.graph_helpers import row_counts_by_partition

HOUR = "2025-10-01-12:00"
T0 = pd.Timestamp("2025-10-01 12:00", tz="UTC")
UPSTREAM_SPECS = [dg.AssetSpec("news_articles", partitions_def=HOURLY), dg.AssetSpec("social_posts", partitions_def=HOURLY)]
# Unloadable on purpose: no network and no such folder, so both item types fall back to VADER.
NO_MODELS = {"news_model": "/nonexistent/finbert", "social_model": "/nonexistent/cryptobert",
             "crypto_news_model": "/nonexistent/cryptobert-news"}


def at(minutes: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def news_rows() -> list[dict]:
    return [
        {"article_id": "n-rally", "title": "Bitcoin rally brings great gains", "summary": "<p>Happy investors.</p>",
         "published_at": at(5), "symbols_mentioned": "BTC", "feed": "coindesk"},
        {"article_id": "n-hack", "title": "Exchange hack: terrible losses", "summary": "Traders hurt.",
         "published_at": at(30), "symbols_mentioned": "ETH", "feed": "cnbc_top"},
        {"article_id": "n-empty", "title": "", "summary": None, "published_at": at(50), "symbols_mentioned": None},
    ]


def social_rows() -> list[dict]:
    return [
        # VADER scores this exactly 0.0: it must still count as scored on the next run.
        {"post_id": "p-zero", "title": "the", "selftext": "", "published_at": at(1), "symbols_mentioned": ""},
        {"post_id": "p-love", "title": "HODL", "selftext": "Love this project", "published_at": at(20),
         "symbols_mentioned": "SOL"},
        {"post_id": "p-next-hour", "title": "Good morning", "selftext": "", "published_at": at(70),
         "symbols_mentioned": ""},
    ]


def write_upstream(warehouse: Warehouse, name: str, rows: list[dict]) -> None:
    """Write rows into an upstream table; columns the rows do not set stay empty."""
    spec = table(name)
    body = "selftext" if "selftext" in spec.column_names else "body"
    frame = pd.DataFrame(rows).rename(columns={"selftext": body})
    frame = frame.assign(source=f"test:{name}", ingested_at=pd.Timestamp.now(tz="UTC"))
    for column in spec.column_names:
        if column not in frame.columns:
            frame[column] = None
    warehouse.replace_window(spec, frame, T0, T0 + pd.Timedelta(hours=2))


@pytest.fixture
def warehouse(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    wh = open_warehouse(url)
    write_upstream(wh, "news_articles", news_rows())
    write_upstream(wh, "social_posts", social_rows())
    yield wh
    wh.dispose()


def materialize(warehouse: Warehouse, *, partition: str | None = HOUR, tags=None, rescore=False, **models):
    resources = {
        "io_manager": WarehouseIOManager(url=warehouse.url),
        "warehouse": WarehouseResource(url=warehouse.url),
        "sentiment_model": SentimentModel(**{**NO_MODELS, **models}),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            [*UPSTREAM_SPECS, sentiment_scores], partition_key=partition, tags=tags, resources=resources,
            selection=[sentiment_scores],
            run_config={"ops": {"sentiment_scores": {"config": {"rescore": rescore}}}},
        )
    event = result.get_asset_materialization_events()[0]
    return {**{k: v.value for k, v in event.materialization.metadata.items()},
            "row_count_by_partition": row_counts_by_partition(result)}


def stored(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read(SENTIMENT_SCORES).sort_values(["item_id", "model"]).reset_index(drop=True)


def test_asset_definition():
    spec = next(iter(sentiment_scores.specs))
    assert spec.group_name == "enrich" and spec.description
    assert sentiment_scores.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=168)
    assert sentiment_scores.op.pool == "sentiment"
    assert {d.asset_key.path[-1] for d in spec.deps} == {"news_articles", "social_posts"}
    assert sentiment_scores.partitions_def == HOURLY


@pytest.mark.slow
def test_fallback_rows_say_vader_and_metadata_says_fallback(warehouse):
    meta = materialize(warehouse)
    rows = stored(warehouse)
    assert sorted(rows.item_id) == ["n-hack", "n-rally", "p-love", "p-zero"]  # window only; empty text quarantined
    assert (rows.model == "vader").all() and (rows.model_version == "vaderSentiment==3.3.2").all()
    assert meta["fallback"] == "yes"
    # scorer per market: stock-market news (a finance feed) -> news model, crypto news -> crypto_news model
    assert meta["model_by_item_type"] == {"news": "vader", "crypto_news": "vader", "social": "vader"}
    assert "/nonexistent/finbert" in meta["fallback_by_item_type"]["news"]
    assert "/nonexistent/cryptobert-news" in meta["fallback_by_item_type"]["crypto_news"]
    assert meta["items_by_market_type"] == {"news:crypto": 1, "news:stock": 1, "social:crypto": 2}
    assert meta["news_from_feeds_not_in_catalog"] == 1  # n-empty has no feed
    assert rows.set_index("item_id").market_type.to_dict() == {
        "n-hack": "stock", "n-rally": "crypto", "p-love": "crypto", "p-zero": "crypto"}
    assert meta["rows"] == 4 and meta["scored_now"] == 4 and meta["texts_per_second"] > 0
    assert meta["quarantine_by_reason"] == {"no text to score": 1}
    quarantined = warehouse.read(QUARANTINE, filters={"asset": ["sentiment_scores"]})
    assert quarantined.record_key.tolist() == ["news|n-empty"]

    by_id = rows.set_index("item_id")
    assert by_id.loc["n-rally", "label"] == "positive" and by_id.loc["n-hack", "label"] == "negative"
    assert by_id.loc["n-rally", "text_chars"] == len("Bitcoin rally brings great gains. Happy investors.")
    assert by_id.loc["p-love", "source"] == "test:social_posts" and by_id.loc["n-rally", "symbols_mentioned"] == "BTC"
    assert (rows.published_at >= T0).all() and (rows.published_at < T0 + pd.Timedelta(hours=1)).all()


@pytest.mark.slow
def test_rematerializing_is_idempotent_and_a_zero_score_is_not_repicked(warehouse):
    materialize(warehouse)
    first = stored(warehouse)
    assert first.set_index("item_id").loc["p-zero", "score"] == 0.0

    meta = materialize(warehouse)
    pd.testing.assert_frame_equal(stored(warehouse), first)
    assert meta["scored_now"] == 0 and meta["kept_from_previous_run"] == 4  # presence marks "scored"

    # Upstream changes: one item gone, one new, one edited. The window is replaced, not appended to.
    news = [r for r in news_rows() if r["article_id"] != "n-hack"]
    news[0] = {**news[0], "summary": "Happy investors celebrate a wonderful week."}
    news.append({"article_id": "n-new", "title": "Awful day for miners", "summary": "", "published_at": at(40),
                 "symbols_mentioned": "BTC"})
    write_upstream(warehouse, "news_articles", news)
    meta = materialize(warehouse)
    rows = stored(warehouse)
    assert sorted(rows.item_id) == ["n-new", "n-rally", "p-love", "p-zero"]
    assert meta["scored_now"] == 2  # the new item and the edited one
    assert rows.duplicated(["item_id", "model"]).sum() == 0

    meta = materialize(warehouse, rescore=True)
    assert meta["scored_now"] == 4 and meta["kept_from_previous_run"] == 0
    pd.testing.assert_frame_equal(stored(warehouse).drop(columns="ingested_at"), rows.drop(columns="ingested_at"))


@pytest.mark.slow
def test_transformer_scores_replace_fallback_rows_once_the_model_loads(warehouse, tmp_path):
    materialize(warehouse)  # everything VADER
    path = build_tiny_classifier(tmp_path / "cryptobert-tiny", CRYPTOBERT_LABELS, "Bullish", arch="roberta")
    meta = materialize(warehouse, social_model=str(path))
    rows = stored(warehouse)
    social, news = rows[rows.item_type == "social"], rows[rows.item_type == "news"]
    assert sorted(social.item_id) == ["p-love", "p-zero"] and (social.model == str(path)).all()
    assert (social.score > 0.99).all() and (social.label == "positive").all()
    assert social.model_version.str.contains("@sha256:").all()
    assert (news.model == "vader").all()  # news model still unloadable: still VADER, still said so
    assert meta["model_by_item_type"] == {"news": "vader", "crypto_news": "vader", "social": str(path)}
    assert meta["fallback"] == "yes" and list(meta["fallback_by_item_type"]) == ["news", "crypto_news"]
    assert meta["by_item_type"]["social"]["scored_now"] == 2 and meta["by_item_type"]["news"]["scored_now"] == 0


@pytest.mark.slow
def test_stock_news_is_scored_by_the_finance_model_and_crypto_news_by_the_crypto_model(warehouse, tmp_path):
    finance = build_tiny_classifier(tmp_path / "finbert-tiny", FINBERT_LABELS, "negative")
    crypto = build_tiny_classifier(tmp_path / "cryptobert-tiny", CRYPTOBERT_LABELS, "Bullish", arch="roberta")
    meta = materialize(warehouse, news_model=str(finance), crypto_news_model=str(crypto), social_model=str(crypto))
    rows = stored(warehouse).set_index("item_id")
    # n-hack came from CNBC (catalog category finance): the finance model; n-rally from CoinDesk: the crypto one
    assert (rows.loc["n-hack", "market_type"], rows.loc["n-hack", "model"]) == ("stock", str(finance))
    assert (rows.loc["n-rally", "market_type"], rows.loc["n-rally", "model"]) == ("crypto", str(crypto))
    # each tiny model favours one class by NAME: FinBERT-style "negative", CryptoBERT-style "Bullish"
    assert rows.loc["n-hack", "score"] < -0.99 and rows.loc["n-rally", "score"] > 0.99
    assert meta["fallback"] == "no" and meta["model_by_item_type"] == {
        "news": str(finance), "crypto_news": str(crypto), "social": str(crypto)}
    # an article moving market (its feed re-categorised, or a new model) is re-scored, one row per item
    news = [{**r, "feed": "cnbc_top"} if r["article_id"] == "n-rally" else r for r in news_rows()]
    write_upstream(warehouse, "news_articles", news)
    meta = materialize(warehouse, news_model=str(finance), crypto_news_model=str(crypto), social_model=str(crypto))
    rows = stored(warehouse).set_index("item_id")
    assert rows.loc["n-rally", "model"] == str(finance) and rows.loc["n-rally", "market_type"] == "stock"
    assert meta["scored_now"] == 1 and not rows.index.duplicated().any()


def test_ranged_backfill_puts_each_score_in_its_items_partition(warehouse):
    meta = materialize(
        warehouse, partition=None,
        tags={"dagster/asset_partition_range_start": "2025-10-01-12:00",
              "dagster/asset_partition_range_end": "2025-10-01-13:00"},
    )
    assert meta["row_count_by_partition"] == {"2025-10-01-12:00": 4, "2025-10-01-13:00": 1}
    late = stored(warehouse).set_index("item_id").loc["p-next-hour"]
    assert late.published_at == at(70)


def test_strict_mode_fails_the_run_instead_of_writing_vader(warehouse):
    with pytest.raises(Exception, match="strict mode"):
        materialize(warehouse, strict=True)
    assert warehouse.count(SENTIMENT_SCORES) == 0


def _coverage_check(warehouse: Warehouse, instance, *, materialize_first: bool):
    """Run the project's `sentiment_coverage` check on the partition (after materializing it)."""
    from crypto_assets.checks.data_checks import all_data_checks

    checks = all_data_checks([sentiment_scores])
    coverage = dg.AssetCheckKey(sentiment_scores.key, "sentiment_coverage")
    resources = {
        "io_manager": WarehouseIOManager(url=warehouse.url),
        "warehouse": WarehouseResource(url=warehouse.url),
        "sentiment_model": SentimentModel(**NO_MODELS),
    }
    selection = (dg.AssetSelection.assets(sentiment_scores) - dg.AssetSelection.all_asset_checks()
                 | dg.AssetSelection.checks(coverage)) if materialize_first else dg.AssetSelection.checks(coverage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the check itself is not partitioned: it reads the latest materialized partition
        result = dg.materialize([*UPSTREAM_SPECS, sentiment_scores, *checks],
                                partition_key=HOUR if materialize_first else None,
                                resources=resources, selection=selection, instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.slow
def test_sentiment_coverage_check_measures_the_scored_share_of_news(warehouse):
    with dg.instance_for_test() as instance:
        scored = _coverage_check(warehouse, instance, materialize_first=True)
        assert scored.passed and scored.metadata["coverage"].value == 1.0
        assert scored.metadata["articles"].value == 3 and scored.metadata["articles_without_text"].value == 1
        # two articles arrive in the hour after it was scored: 2 of the 4 with text are covered
        write_upstream(warehouse, "news_articles", [
            *news_rows(),
            {"article_id": "n-late-1", "title": "Late one", "summary": "", "published_at": at(40), "symbols_mentioned": ""},
            {"article_id": "n-late-2", "title": "Late two", "summary": "", "published_at": at(41), "symbols_mentioned": ""},
        ])
        late = _coverage_check(warehouse, instance, materialize_first=False)
    assert not late.passed and late.metadata["coverage"].value == 2 / 4
    assert late.metadata["unscored_sample"].value == ["n-late-1", "n-late-2"]

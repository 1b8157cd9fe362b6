"""The `news_narratives` asset against a temporary SQLite warehouse and a real loopback HTTP server that
answers like Ollama (recorded envelopes, see data/ollama/README.md; the narrative JSON inside them is
written by these tests). The articles are test input written here, not recordings."""

from __future__ import annotations

import json
import warnings

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.assets.enrich.narratives import news_narratives
from crypto_assets.llm import narratives as nar
from crypto_assets.llm.ollama import LLMResource
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.narratives import LLM_CACHE, NEWS_NARRATIVES
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.store import Warehouse
from crypto_assets_tests.graph_helpers import row_counts_by_partition
from crypto_assets_tests.llm.ollama_server import Answer, OllamaServer, chat_body_with_content, recorded
from crypto_assets_tests.sentiment.test_sentiment_asset import write_upstream

T0 = pd.Timestamp("2025-10-01 12:00", tz="UTC")
H1, H2 = "2025-10-01-12:00", "2025-10-01-13:00"
UPSTREAM = [dg.AssetSpec("news_articles", partitions_def=HOURLY)]
MODEL = "gpt-oss:20b"  # one of the models in the recorded /api/tags answer

ARTICLES = [
    {"article_id": "a-sec", "title": "SEC delays decision on spot ether ETF", "summary": "The regulator asked for comments.",
     "published_at": T0 + pd.Timedelta(minutes=10), "symbols_mentioned": "ETH", "publisher": "Test Wire"},
    {"article_id": "a-hack", "title": "Exchange reports hot wallet breach", "summary": "Withdrawals paused.",
     "published_at": T0 + pd.Timedelta(minutes=40), "symbols_mentioned": "BTC|ETH", "publisher": "Test Wire"},
    {"article_id": "b-fed", "title": "Fed holds rates; bitcoin steady", "summary": "",
     "published_at": T0 + pd.Timedelta(minutes=75), "symbols_mentioned": "BTC", "publisher": "Test Wire"},
]
HOUR1 = {"themes": [{"theme": "regulation", "strength": 0.6, "coins": ["ETH"], "evidence": [2]},
                    {"theme": "security", "strength": 0.4, "coins": ["BTC", "ETH"], "evidence": [1]}],
         "summary": "A regulator delayed an ether ETF decision and an exchange paused withdrawals after a breach."}
INVALID = json.dumps({"themes": [{"theme": "macro", "strength": 2, "coins": [], "evidence": [1]}], "summary": "x"})


@pytest.fixture
def warehouse(tmp_path):
    wh = open_warehouse(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    write_upstream(wh, "news_articles", ARTICLES)
    yield wh
    wh.dispose()


def materialize(warehouse: Warehouse, llm: LLMResource, *, partition=H1, range_=None, raise_on_error=True):
    resources = {"io_manager": WarehouseIOManager(url=warehouse.url), "warehouse": WarehouseResource(url=warehouse.url),
                 "llm": llm}
    tags = {"dagster/asset_partition_range_start": range_[0], "dagster/asset_partition_range_end": range_[1]} if range_ else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize([*UPSTREAM, news_narratives], selection=[news_narratives], resources=resources,
                                partition_key=None if range_ else partition, tags=tags, raise_on_error=raise_on_error)
    if not result.success:
        return result, None
    event = result.get_asset_materialization_events()[0]
    return result, {k: v.value for k, v in event.materialization.metadata.items()}


def llm_for(server: OllamaServer, model: str = MODEL) -> LLMResource:
    return LLMResource(url=server.url, model=model, timeout_s=10, connect_timeout_s=2)


def serve(server: OllamaServer, *chat_contents: str) -> None:
    server.queue("/api/tags", Answer(recorded("tags.json")))
    server.queue("/api/chat", *(Answer(chat_body_with_content(c)) for c in chat_contents))


def test_without_an_llm_the_asset_is_disabled_not_failed_and_writes_nothing(warehouse, monkeypatch):
    monkeypatch.delenv("CRYPTO_LLM_URL", raising=False)
    monkeypatch.delenv("CRYPTO_LLM_MODEL", raising=False)
    result, meta = materialize(warehouse, LLMResource())
    assert result.success
    assert meta["llm"] == "disabled" and "CRYPTO_LLM_URL" in meta["disabled_reason"] and meta["rows"] == 0
    assert warehouse.read(NEWS_NARRATIVES).empty and warehouse.read(LLM_CACHE).empty


@pytest.mark.slow
def test_narratives_validated_cached_and_failed_hours_recorded_without_values(warehouse):
    with OllamaServer() as server:
        # hour 1: one invalid answer, then a valid one; hour 2: invalid three times
        serve(server, INVALID, json.dumps(HOUR1), INVALID, INVALID, INVALID)
        result, meta = materialize(warehouse, llm_for(server), range_=(H1, H2))
        first_calls = server.chat_requests()
    assert meta["llm"] == "enabled" and meta["asked"] == 2 and meta["from_cache"] == 0 and meta["failed"] == 1
    assert meta["model_calls"] == 5 and len(first_calls) == 5
    assert row_counts_by_partition(result) == {H1: 1, H2: 1}

    # what was asked: the schema as `format`, the hour's articles, newest first, numbered
    assert first_calls[0]["format"] == nar.NARRATIVE_SCHEMA and first_calls[0]["model"] == MODEL
    prompt = first_calls[0]["messages"][1]["content"]
    assert prompt.index("[1] 12:40 Test Wire: Exchange reports hot wallet breach") < prompt.index("[2] 12:10")
    assert "Fed holds rates" not in prompt and "Fed holds rates" in first_calls[2]["messages"][1]["content"]

    rows = warehouse.read(NEWS_NARRATIVES).set_index("hour_start")
    ok, failed = rows.loc[T0], rows.loc[T0 + pd.Timedelta("1h")]
    assert ok.status == "ok" and ok.summary == HOUR1["summary"] and json.loads(ok.themes_json) == HOUR1["themes"]
    assert (ok.strength_regulation, ok.strength_security, ok.strength_macro) == (0.6, 0.4, 0.0)
    assert ok.top_theme == "regulation" and ok.coins == "BTC|ETH" and ok.attempts == 2 and not ok.cached
    assert "attempt 1" in ok.error and ok.available_at == T0 + pd.Timedelta(minutes=40)
    assert ok.article_count == 2 and ok.model == MODEL and ok.prompt_version == nar.PROMPT_VERSION
    # a failed hour keeps no part of any answer: no summary, no themes, no strengths (NULL, not 0)
    assert failed.status == "failed" and failed.attempts == 3 and failed.summary is None and failed.themes_json is None
    assert pd.isna(failed[nar.strength_columns()]).all() and "2 is greater than the maximum of 1" in failed.error

    cache = warehouse.read(LLM_CACHE)
    assert len(cache) == 1 and json.loads(cache.response_json.iloc[0]) == HOUR1
    assert cache.cache_key.iloc[0] == nar.cache_key(["a-hack", "a-sec"], MODEL) == ok.cache_key

    # re-run: hour 1 comes from the cache (no model call), the failed hour is asked again
    with OllamaServer() as server:
        serve(server, json.dumps({"themes": [{"theme": "macro", "strength": 0.5, "coins": ["BTC"], "evidence": [1]}],
                                  "summary": "The Fed held rates."}))
        _, meta = materialize(warehouse, llm_for(server), range_=(H1, H2))
        again = server.chat_requests()
    assert meta["from_cache"] == 1 and meta["asked"] == 1 and len(again) == 1
    assert "Fed holds rates" in again[0]["messages"][1]["content"]
    rows = warehouse.read(NEWS_NARRATIVES).set_index("hour_start")
    assert len(rows) == 2 and rows.loc[T0].cached and rows.loc[T0].attempts == 0
    assert rows.loc[T0].summary == HOUR1["summary"] and rows.loc[T0 + pd.Timedelta("1h")].status == "ok"


@pytest.mark.slow
def test_new_articles_or_another_model_change_the_key_and_ask_again(warehouse):
    with OllamaServer() as server:
        serve(server, json.dumps(HOUR1))
        materialize(warehouse, llm_for(server))
        write_upstream(warehouse, "news_articles", [*ARTICLES, {
            "article_id": "a-late", "title": "Stablecoin issuer wins license", "summary": "",
            "published_at": T0 + pd.Timedelta(minutes=50), "symbols_mentioned": "", "publisher": "Test Wire"}])
        _, meta = materialize(warehouse, llm_for(server))
        assert meta["asked"] == 1 and meta["from_cache"] == 0 and len(server.chat_requests()) == 2
        _, meta = materialize(warehouse, llm_for(server))  # unchanged: cached
        assert meta["from_cache"] == 1 and len(server.chat_requests()) == 2
        _, meta = materialize(warehouse, llm_for(server, "gpt-oss:120b"))
        assert meta["asked"] == 1 and len(server.chat_requests()) == 3
    assert len(warehouse.read(LLM_CACHE)) == 3


def test_a_configured_server_without_the_model_fails_the_run_naming_it(warehouse):
    with OllamaServer() as server:
        serve(server, json.dumps(HOUR1))
        result, _ = materialize(warehouse, llm_for(server, "llama3.2"),
                                raise_on_error=False)
        assert not result.success and server.chat_requests() == []
    message = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "llama3.2" in message and "not on the server" in message
    assert warehouse.read(NEWS_NARRATIVES).empty


def test_an_hour_without_news_asks_nothing(warehouse):
    with OllamaServer() as server:
        serve(server, json.dumps(HOUR1))
        _, meta = materialize(warehouse, llm_for(server), partition="2025-10-01-15:00")
        assert meta["rows"] == 0 and server.requests == []


@pytest.mark.slow
def test_automation_news_brings_narratives_and_features_never_wait_for_them(sqlite_url, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from crypto_assets_tests.graph_helpers import ProjectGraph
    from crypto_assets_tests.automation.test_automation import Ticks, requested

    now, latest = datetime(2021, 5, 15, 14, 30, tzinfo=timezone.utc), "2021-05-15-14:00"
    # Without an LLM the asset has no automation at all (a run would do nothing)...
    unconfigured = ProjectGraph(sqlite_url).defs.resolve_asset_graph().get(dg.AssetKey("news_narratives"))
    assert unconfigured.automation_condition is None
    # ...with one configured where the code location loads, news brings narratives.
    monkeypatch.setenv("CRYPTO_LLM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CRYPTO_LLM_MODEL", "test-model")
    graph = ProjectGraph(sqlite_url)
    assert dg.AssetKey("news_narratives") not in graph.defs.resolve_asset_graph().get(
        dg.AssetKey("ml_features")).parent_keys
    with dg.instance_for_test() as instance:
        ticks = Ticks(graph, instance)
        ticks.tick(now)
        graph.materialize(instance, ["coin_universe"])
        graph.materialize(instance, ["price_observations", "ohlcv_bars", "technical_indicators"], partition=latest)
        tick = ticks.tick(now + timedelta(minutes=1))
        assert requested(tick, "news_narratives") == set()  # no news yet: nothing to narrate
        assert requested(tick, "ml_features") == {latest}
        graph.materialize(instance, ["news_articles"], partition=latest)
        assert requested(ticks.tick(now + timedelta(minutes=2)), "news_narratives") == {latest}

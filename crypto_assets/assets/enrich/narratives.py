"""`news_narratives`: per hour, the themes of the news and a short narrative, written by a local LLM.

Optional: without a configured LLM (CRYPTO_LLM_URL + CRYPTO_LLM_MODEL) the asset succeeds with zero
rows and metadata `llm: disabled` plus the reason. Nothing downstream requires it.
"""


import json

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.llm import narratives as nar
from crypto_assets.llm.ollama import OK, LLMResource
from crypto_assets.partitions import HOURLY
from crypto_assets.tables.narratives import LLM_CACHE, NEWS_NARRATIVES
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import Warehouse, utcnow

TASK = "news_narratives"


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(columns=NEWS_NARRATIVES.column_names)


def cached_answer(warehouse: Warehouse, key: str) -> dict | None:
    rows = warehouse.read(LLM_CACHE, filters={"cache_key": [key]})
    return None if rows.empty else rows.iloc[0].to_dict()


def store_answer(warehouse: Warehouse, key: str, model: str, article_ids: list[str], document: dict,
                 attempts: int, generated_at, now) -> None:
    row = {"cache_key": key, "task": TASK, "model": model, "prompt_version": nar.PROMPT_VERSION,
           "article_ids": "|".join(sorted(article_ids)), "response_json": json.dumps(document, sort_keys=True),
           "attempts": attempts, "generated_at": generated_at, "source": f"ollama:{model}", "ingested_at": now}
    warehouse.replace_all(LLM_CACHE, pd.DataFrame([row]), where={"cache_key": key})


def narrate_hours(articles: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, llm: LLMResource,
                  warehouse: Warehouse, *, log=None, transport=None) -> tuple[pd.DataFrame, dict]:
    """Rows of `news_narratives` for the hours in [start, end) that have articles, and run stats.
    A cached answer for the same (article ids, model, prompt version) is reused without a call."""
    stats = {"hours_with_news": 0, "asked": 0, "from_cache": 0, "failed": 0, "model_calls": 0}
    if articles is None or articles.empty:
        return empty_frame(), stats
    articles = articles.assign(published_at=pd.to_datetime(articles.published_at, utc=True))
    articles = articles[(articles.published_at >= start) & (articles.published_at < end)
                        & articles.article_id.notna()].drop_duplicates("article_id")
    rows, now = [], utcnow()
    client = None
    try:
        for hour, group in articles.groupby(articles.published_at.dt.floor("h"), sort=True):
            stats["hours_with_news"] += 1
            sent = nar.select_articles(group)
            ids = sent.article_id.astype(str).tolist()
            key = nar.cache_key(ids, llm.model)
            hit = cached_answer(warehouse, key)
            common = dict(key=key, model=llm.model, n_articles_total=len(group))
            if hit is not None:
                stats["from_cache"] += 1
                rows.append(nar.narrative_row(hour, sent, status=OK, document=json.loads(hit["response_json"]),
                                              attempts=0, error=None, cached=True,
                                              generated_at=hit["generated_at"], **common))
                continue
            if client is None:
                client = llm.client(transport=transport, log=log)
                client.check_model()  # a configured server that is down or lacks the model fails the run here
            stats["asked"] += 1
            result = client.chat_json(nar.messages_for(hour, sent), nar.NARRATIVE_SCHEMA,
                                      max_attempts=llm.max_attempts, stream=llm.stream,
                                      check=lambda d, n=len(sent): nar.semantic_errors(d, n))
            stats["model_calls"] += result.attempts
            generated_at = utcnow()
            error = " | ".join(result.errors) or None
            if result.ok:
                store_answer(warehouse, key, llm.model, ids, result.value, result.attempts, generated_at, now)
            else:
                stats["failed"] += 1
            rows.append(nar.narrative_row(hour, sent, status=result.status, document=result.value,
                                          attempts=result.attempts, error=error, cached=False,
                                          generated_at=generated_at, **common))
    finally:
        if client is not None:
            client.close()
    frame = pd.DataFrame(rows).assign(source=f"ollama:{llm.model}", ingested_at=now)
    return frame.reindex(columns=NEWS_NARRATIVES.column_names), stats


@dg.asset(
    partitions_def=HOURLY,
    ins={"news_articles": dg.AssetIn()},  # same partitions: identity mapping
    backfill_policy=HOURLY_BACKFILL,
    group_name="enrich",
    pool="llm",
    kinds={"python", "sql"},
    description=(
        "OPTIONAL. Per hour of news: themes (regulation, adoption, technology, macro, security, markets) with "
        "strength in [0, 1] and the coins each touches, and a short narrative summary, written by a local "
        "Ollama model and validated against a JSON schema (invalid answers are asked again, then recorded as "
        "status='failed' with NULL values). Answers are cached by (article ids, model, prompt version) in "
        "`llm_cache`. Without CRYPTO_LLM_URL and CRYPTO_LLM_MODEL the asset is disabled: zero rows, metadata "
        "says so, the run succeeds. Nothing downstream requires it."
    ),
)
def news_narratives(
    context: dg.AssetExecutionContext,
    news_articles: pd.DataFrame,
    llm: LLMResource,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    meta = {"partition": partition_label(context), "prompt_version": nar.PROMPT_VERSION}
    if not llm.enabled:
        reason = llm.disabled_reason()
        context.log.info(f"news_narratives disabled: {reason}")
        context.add_output_metadata({**meta, "llm": "disabled", "disabled_reason": reason, "rows": 0})
        return empty_frame()
    out, stats = narrate_hours(news_articles, start, end, llm, warehouse.get(), log=context.log.warning)
    context.add_output_metadata({
        **meta, "llm": "enabled", "model": llm.model, "rows": len(out), **stats,
        "status_counts": dg.MetadataValue.json(out.status.value_counts().astype(int).to_dict()),
    })
    return out


ASSETS = [news_narratives]

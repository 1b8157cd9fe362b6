"""`sentiment_scores`: sentiment of every news article and social post, by published hour."""


from dataclasses import dataclass

import dagster as dg
import pandas as pd

from crypto_assets.assets.common import HOURLY_BACKFILL, partition_label, window_of
from crypto_assets.partitions import HOURLY
from crypto_assets.quality.quarantine import Rejects
from crypto_assets.sentiment.market import CRYPTO, known_feed, market_types, scorer_kind
from crypto_assets.sentiment.model import SCORE_COLUMNS, ScorerChoice, SentimentModel
from crypto_assets.sentiment.text import NO_TEXT_TO_SCORE, title_and_lead
from crypto_assets.tables.sentiment import SENTIMENT_SCORES
from crypto_assets.warehouse.resource import WarehouseResource
from crypto_assets.warehouse.store import utcnow

ITEM_COLUMNS = ["item_id", "item_type", "market_type", "text", "published_at", "symbols_mentioned", "source"]
# Scorer kinds in the order a run loads them (see SentimentModel.SCORER_KINDS): stock-market news
# (finance model), crypto news (crypto model), social posts.
SCORER_ORDER = ("news", "crypto_news", "social")


@dataclass(frozen=True)
class ItemShape:
    """Where an upstream table keeps an item's id and text."""

    id_column: str
    body_columns: tuple[str, ...]  # the first one the frame has is the lead


UPSTREAM = {
    "news": ItemShape("article_id", ("summary", "description", "lead")),
    "social": ItemShape("post_id", ("selftext", "body", "text")),
}


class SentimentConfig(dg.Config):
    rescore: bool = False
    """Score every item again. By default an item that already has a row from the same model
    version (and the same text length) keeps it: the row's presence marks it scored, whatever
    its score (a score of exactly 0 is a result, not a missing value)."""


def items_from(item_type: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Upstream rows -> items to score (id, type, title + lead text, published time, symbols, source)."""
    shape = UPSTREAM[item_type]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    body = next((c for c in shape.body_columns if c in frame.columns), None)
    titles = frame["title"] if "title" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    leads = frame[body] if body else pd.Series([None] * len(frame), index=frame.index)
    feeds = frame["feed"] if item_type == "news" and "feed" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    return pd.DataFrame(
        {
            "item_id": frame[shape.id_column].astype(object),
            "item_type": item_type,
            "market_type": market_types(feeds) if item_type == "news" else CRYPTO,
            "text": [title_and_lead(t, b) for t, b in zip(titles, leads)],
            "published_at": pd.to_datetime(frame["published_at"], utc=True),
            "symbols_mentioned": frame["symbols_mentioned"] if "symbols_mentioned" in frame.columns else None,
            "source": frame["source"] if "source" in frame.columns else None,
        }
    ).reset_index(drop=True)


def contain_bad_items(items: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, rejects: Rejects) -> pd.DataFrame:
    """Quarantine items we cannot score or place; return the rest."""
    keys = ("item_type", "item_id")
    items = rejects.reject(items, items.item_id.isna(), "missing item id", key_cols=("item_type",))
    items = rejects.reject(items, items.published_at.isna(), "missing published time", key_cols=keys)
    items = rejects.reject(items, items.text.str.len() == 0, NO_TEXT_TO_SCORE, key_cols=keys, time_col="published_at")
    outside = (items.published_at < start) | (items.published_at >= end)
    items = rejects.reject(items, outside, "published outside the partition window", key_cols=keys)
    dupes = items.duplicated(subset=["item_id"], keep="first")
    return rejects.reject(items, dupes, "duplicate item id", key_cols=keys, time_col="published_at")


def rows_of(previous: pd.DataFrame, choice: ScorerChoice) -> pd.DataFrame:
    """Stored rows written by exactly the model version that scores this item type now."""
    return previous[(previous.model == choice.model) & (previous.model_version == choice.model_version)]


def reusable(items: pd.DataFrame, same_model: pd.DataFrame) -> pd.Series:
    """Items that already have a row from this model version, for a text of the same length."""
    known = dict(zip(same_model.item_id, same_model.text_chars))
    same_text = [pd.notna(known.get(i)) and int(known[i]) == len(t) for i, t in zip(items.item_id, items.text)]
    return pd.Series(same_text, index=items.index, dtype=bool)


def score_items(items: pd.DataFrame, previous: pd.DataFrame, model: SentimentModel,
                choice: ScorerChoice, now) -> tuple[pd.DataFrame, dict]:
    """Rows for one item type: kept rows for already-scored items, fresh scores for the rest."""
    same_model = rows_of(previous, choice)
    keep = reusable(items, same_model)
    kept = items[keep].merge(
        same_model[["item_id", "model", "model_version", *SCORE_COLUMNS, "ingested_at"]], on="item_id"
    )
    todo = items[~keep].reset_index(drop=True)
    scores, _, seconds = model.score(todo.text.tolist(), choice.item_type)
    fresh = pd.concat([todo, scores], axis=1).assign(ingested_at=now)
    parts = [f for f in (kept, fresh) if len(f)]
    rows = pd.concat(parts, ignore_index=True) if parts else fresh
    rows["text_chars"] = rows.text.str.len()
    stats = {
        "model": choice.model,
        "model_version": choice.model_version,
        "requested_model": choice.requested,
        "fallback": choice.is_fallback,
        "fallback_reason": choice.fallback_reason,
        "device": choice.scorer.device,
        "quantized": choice.scorer.quantized,
        "items": len(items),
        "scored_now": len(todo),
        "kept_from_previous_run": len(kept),
        "scoring_seconds": seconds,
        "texts_per_second": round(len(todo) / seconds, 1) if seconds > 0 and len(todo) else None,
    }
    return rows, stats


@dg.asset(
    partitions_def=HOURLY,
    ins={"news_articles": dg.AssetIn(), "social_posts": dg.AssetIn()},  # same partitions: identity mapping
    backfill_policy=HOURLY_BACKFILL,
    group_name="enrich",
    # Scoring is compute-bound: a pool bounds how many runs score at once (and can be mapped
    # to GPU nodes later); the op tag says which steps want an accelerator.
    pool="sentiment",
    op_tags={"crypto_assets/accelerator": "gpu-preferred"},
    kinds={"pytorch", "python", "sql"},
    description=(
        "Sentiment of each news article and social post: stock-market/macro news (feed category finance) by "
        "the finance model (FinBERT by default), crypto news and social posts by the crypto model (CryptoBERT "
        "by default); `market_type` (stock/crypto) says which market each row is about. Scored on title + lead and partitioned by the item's published time. score = P(positive) - "
        "P(negative) in [-1, 1], classes mapped by the model's label names. When a transformer model "
        "cannot be loaded the text is scored by VADER and the rows say model='vader' (also stated in "
        "the materialization metadata). Items without text go to `quarantine`."
    ),
)
def sentiment_scores(
    context: dg.AssetExecutionContext,
    config: SentimentConfig,
    news_articles: pd.DataFrame,
    social_posts: pd.DataFrame,
    sentiment_model: SentimentModel,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    window = window_of(context)
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    rejects = Rejects("sentiment_scores", "news_articles+social_posts")
    items = pd.concat(
        [f for f in (items_from("news", news_articles), items_from("social", social_posts)) if len(f)]
        or [pd.DataFrame(columns=ITEM_COLUMNS)],
        ignore_index=True,
    )
    items = contain_bad_items(items, start, end, rejects)
    previous = (
        warehouse.get().read(SENTIMENT_SCORES, start, end) if not config.rescore
        else pd.DataFrame(columns=SENTIMENT_SCORES.column_names)
    )

    now = utcnow()
    kinds = pd.Series([scorer_kind(t, m) for t, m in zip(items.item_type, items.market_type)],
                      index=items.index, dtype=object)
    frames, per_type = [], {}
    for item_type in SCORER_ORDER:  # a scorer kind: news (stock), crypto_news, social
        of_type = items[kinds == item_type]
        if of_type.empty:
            continue  # no model load for a kind with nothing to score
        choice = sentiment_model.choose(item_type)
        if choice.is_fallback:
            context.log.warning(
                f"{item_type}: model {choice.requested!r} unavailable, scoring with VADER "
                f"(rows say model='vader'): {choice.fallback_reason}"
            )
        rows, per_type[item_type] = score_items(of_type, previous, sentiment_model, choice, now)
        frames.append(rows)
    rejects.write(warehouse.get(), start, end)

    out = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*ITEM_COLUMNS, "model"])
    ).reindex(columns=SENTIMENT_SCORES.column_names)
    scored_now = sum(s["scored_now"] for s in per_type.values())
    seconds = sum(s["scoring_seconds"] for s in per_type.values())
    context.add_output_metadata(
        {
            "partition": partition_label(context),
            "rows": len(out),
            "model_by_item_type": dg.MetadataValue.json({t: s["model"] for t, s in per_type.items()}),
            "fallback": "yes" if any(s["fallback"] for s in per_type.values()) else "no",
            "fallback_by_item_type": dg.MetadataValue.json(
                {t: s["fallback_reason"] for t, s in per_type.items() if s["fallback"]}
            ),
            "scored_now": scored_now,
            "kept_from_previous_run": sum(s["kept_from_previous_run"] for s in per_type.values()),
            "texts_per_second": round(scored_now / seconds, 1) if seconds > 0 and scored_now else None,
            "by_item_type": dg.MetadataValue.json(
                {t: {**s, "scoring_seconds": round(s["scoring_seconds"], 3)} for t, s in per_type.items()}
            ),
            "label_counts": dg.MetadataValue.json(out.label.value_counts().astype(int).to_dict()),
            "items_by_market_type": dg.MetadataValue.json(
                {f"{t}:{m}": int(n) for (t, m), n in items.groupby(["item_type", "market_type"]).size().items()}),
            # articles routed to crypto only because their feed is not in the catalog
            "news_from_feeds_not_in_catalog": int((~known_feed(news_articles["feed"])).sum())
            if news_articles is not None and "feed" in news_articles.columns else 0,
            "rows_quarantined": len(rejects),
            "quarantine_by_reason": dg.MetadataValue.json(rejects.by_reason()),
        }
    )
    return out.sort_values(["published_at", "item_id"]).reset_index(drop=True)


ASSETS = [sentiment_scores]

"""Hourly news narratives: the prompt, the JSON schema an answer must satisfy, the cache key and
the rows of `news_narratives`. No HTTP here (see `ollama.py`) and no Dagster (see the asset).

An answer is used only when it validates against `NARRATIVE_SCHEMA` AND passes `semantic_errors`
(each theme at most once; evidence numbers name articles that were sent). Anything else is asked
again and finally recorded as a failed hour: never half-parsed, never filled in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Bump when the prompt, the schema or the row mapping changes: the cache key includes it, so
# every hour is asked again under the new version.
PROMPT_VERSION = "narratives-v1"
THEMES = ("regulation", "adoption", "technology", "macro", "security", "markets")
MAX_ARTICLES = 60  # per hour and request (newest first); the rest are counted, not sent
MAX_TEXT_CHARS = 400  # of each article's title + summary
SUMMARY_MAX_CHARS = 600

NARRATIVE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["themes", "summary"],
    "properties": {
        "themes": {
            "type": "array",
            "maxItems": len(THEMES),
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["theme", "strength", "coins", "evidence"],
                "properties": {
                    "theme": {"enum": list(THEMES)},
                    "strength": {"type": "number", "minimum": 0, "maximum": 1},
                    "coins": {"type": "array", "maxItems": 20, "uniqueItems": True,
                              "items": {"type": "string", "pattern": "^[A-Z0-9]{2,10}$"}},
                    "evidence": {"type": "array", "minItems": 1, "uniqueItems": True,
                                 "items": {"type": "integer", "minimum": 1}},
                },
            },
        },
        "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX_CHARS},
    },
}

SYSTEM_PROMPT = (
    "You read one hour of crypto and financial news headlines and report the narratives in them. "
    f"Themes: {', '.join(THEMES)}. For each theme that the articles actually discuss give: strength "
    "from 0 to 1 (the share and weight of the hour's articles about it), coins (upper-case tickers the "
    "articles link to the theme; empty if none), evidence (the [numbers] of the articles). Leave out "
    "themes the articles do not discuss; never invent articles, coins or facts. Then write a neutral "
    f"summary of at most {SUMMARY_MAX_CHARS} characters. Answer with one JSON document only."
)


def semantic_errors(document: dict, n_articles: int) -> list[str]:
    """Rules a JSON schema cannot say: each theme once, evidence numbers within the articles sent."""
    problems = []
    themes = [t["theme"] for t in document.get("themes", [])]
    repeated = sorted({t for t in themes if themes.count(t) > 1})
    if repeated:
        problems.append(f"themes: {', '.join(repeated)} listed more than once")
    for i, theme in enumerate(document.get("themes", [])):
        bad = [n for n in theme["evidence"] if n > n_articles]
        if bad:
            problems.append(f"themes/{i}/evidence: {bad} are not article numbers (1..{n_articles})")
    return problems


def select_articles(articles: pd.DataFrame) -> pd.DataFrame:
    """The articles one request sends: newest first, at most MAX_ARTICLES, ties by id (deterministic)."""
    ordered = articles.sort_values(["published_at", "article_id"], ascending=[False, True])
    return ordered.head(MAX_ARTICLES).reset_index(drop=True)


def article_text(row) -> str:
    title = str(row.get("title") or "").strip()
    summary = str(row.get("summary") or "").strip()
    text = f"{title} - {summary}" if summary and summary != title else title
    return " ".join(text.split())[:MAX_TEXT_CHARS]


def messages_for(hour_start: pd.Timestamp, articles: pd.DataFrame) -> list[dict[str, str]]:
    lines = []
    for i, row in enumerate(articles.to_dict("records"), start=1):
        mentions = row.get("symbols_mentioned") or ""
        publisher = row.get("publisher") or row.get("feed") or ""
        lines.append(f"[{i}] {pd.Timestamp(row['published_at']):%H:%M} {publisher}: {article_text(row)}"
                     + (f" (mentions: {mentions})" if mentions else ""))
    user = f"News published {hour_start:%Y-%m-%d %H:00}-{hour_start + pd.Timedelta('1h'):%H:00} UTC:\n" + "\n".join(lines)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def cache_key(article_ids: Sequence[str], model: str, prompt_version: str = PROMPT_VERSION) -> str:
    """sha256 over (sorted article ids, model, prompt version): the same inputs are never asked twice."""
    blob = json.dumps({"articles": sorted(str(a) for a in article_ids), "model": model,
                       "prompt_version": prompt_version}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def strength_columns() -> list[str]:
    return [f"strength_{t}" for t in THEMES]


def narrative_row(hour_start: pd.Timestamp, articles: pd.DataFrame, *, status: str, document: dict | None,
                  key: str, model: str, attempts: int, error: str | None, cached: bool,
                  generated_at, n_articles_total: int) -> dict:
    """One `news_narratives` row. A failed hour has NaN strengths and no summary (not zeros)."""
    row: dict[str, Any] = {
        "hour_start": hour_start,
        "status": status,
        "model": model,
        "prompt_version": PROMPT_VERSION,
        "cache_key": key,
        "article_count": int(n_articles_total),
        "articles_sent": len(articles),
        "available_at": pd.Timestamp(articles.published_at.max()),
        "attempts": int(attempts),
        "cached": bool(cached),
        "generated_at": generated_at,
        "error": error,
    }
    if document is None:
        row.update({"summary": None, "themes_json": None, "coins": None, "top_theme": None,
                    **{c: np.nan for c in strength_columns()}})
        return row
    themes = {t["theme"]: t for t in document["themes"]}
    coins = sorted({c for t in document["themes"] for c in t["coins"]})
    top = max(document["themes"], key=lambda t: t["strength"])["theme"] if document["themes"] else None
    row.update({
        "summary": document["summary"],
        "themes_json": json.dumps(document["themes"], sort_keys=True),
        "coins": "|".join(coins),
        "top_theme": top,
        # a theme the model did not report is absent from a valid answer: strength 0 (not unknown)
        **{f"strength_{t}": float(themes[t]["strength"]) if t in themes else 0.0 for t in THEMES},
    })
    return row

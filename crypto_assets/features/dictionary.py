"""The registry of `ml_features` columns: name, type, description and inputs of each.

The table schema (`crypto_assets/tables/features.py`), the column metadata shown in the
Dagster UI and `docs/data_dictionary.md` are all generated from `FEATURES` below; the
computation must produce exactly these columns (a test checks it). Regenerate the document with

    python -m crypto_assets.features.dictionary
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crypto_assets.features import params as p
from crypto_assets.features.derivatives import SPECS as DERIVATIVE_SPECS
from crypto_assets.features.intelligence import SPECS as INTELLIGENCE_SPECS
from crypto_assets.features.narratives import SPECS as NARRATIVE_SPECS
from crypto_assets.indicators.columns import INDICATOR_COLUMNS
from crypto_assets.sources.series_catalog import macro_series_catalog, onchain_metrics_catalog

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"

AS_OF = "asof_time"


@dataclass(frozen=True)
class FeatureDef:
    name: str
    kind: str  # a warehouse Column kind: float, int, bool, str, datetime
    group: str
    description: str
    inputs: tuple[str, ...]  # table.column (or table:selection) the value is computed from


def _f(name, group, description, inputs, kind="float") -> FeatureDef:
    return FeatureDef(name, kind, group, description, tuple(inputs))


# -- key and row-description columns (not features) ------------------------------------------

KEY_COLUMNS: tuple[FeatureDef, ...] = (
    _f("symbol", "key", "Ticker.", ["ohlcv_bars.symbol"], "str"),
    _f("bar_start", "key", "Open time of the bar the row describes (UTC).", ["ohlcv_bars.bar_start"], "datetime"),
    _f("bar_interval", "key",
       "Bar length of the row (5min, 30min, 1h, 4h, ...). Per symbol and hour the finest interval present in "
       "ohlcv_bars is used; the other intervals of that hour are not featured.", ["ohlcv_bars.interval"], "str"),
    _f(AS_OF, "key",
       "The row's as-of time = the bar's close time (ohlcv_bars.bar_end, never before bar_start + interval). "
       "Every feature of the row uses only inputs available at or before it.", ["ohlcv_bars.bar_end"], "datetime"),
    _f("bar_method", "key", "How the bar was made: exchange, coingecko_ohlc or resampled_observations.",
       ["ohlcv_bars.method"], "str"),
)


# -- features -------------------------------------------------------------------------------

def _bar_features() -> list[FeatureDef]:
    g = "bar"
    return [
        _f("open", g, "First price of the bar.", ["ohlcv_bars.open"]),
        _f("high", g, "Highest price of the bar.", ["ohlcv_bars.high"]),
        _f("low", g, "Lowest price of the bar.", ["ohlcv_bars.low"]),
        _f("close", g, "Last price of the bar (known at asof_time).", ["ohlcv_bars.close"]),
        _f("volume", g, "Traded volume of the bar; NaN when the source gives none (resampled bars).",
           ["ohlcv_bars.volume"]),
        _f("n_observations", g, "Price observations the bar was resampled from (NaN for provider candles).",
           ["ohlcv_bars.n_observations"], "int"),
        _f("bar_minutes", g, "Bar length in minutes.", ["ohlcv_bars.interval"]),
        _f("bar_return", g, "close / open - 1 within the bar.", ["ohlcv_bars.open", "ohlcv_bars.close"]),
        _f("bar_range", g, "(high - low) / close.", ["ohlcv_bars.high", "ohlcv_bars.low", "ohlcv_bars.close"]),
        _f("close_location", g, "(close - low) / (high - low): 0 at the low, 1 at the high; NaN if high == low.",
           ["ohlcv_bars.high", "ohlcv_bars.low", "ohlcv_bars.close"]),
    ]


def _indicator_features() -> list[FeatureDef]:
    return [
        _f(name, "indicator", f"{description} Copied from technical_indicators for the row's bar and interval.",
           [f"technical_indicators.{name}"])
        for name, description in INDICATOR_COLUMNS
    ]


def _trend_features() -> list[FeatureDef]:
    feats = [
        _f(f"close_to_{level}", "trend", f"close / {level} - 1 (distance of the close from the level).",
           ["ohlcv_bars.close", f"technical_indicators.{level}"])
        for level in p.CLOSE_RATIO_LEVELS
    ]
    feats += [
        _f(f"{fast}_to_{slow}", "trend", f"{fast} / {slow} - 1 (moving-average spread).",
           [f"technical_indicators.{fast}", f"technical_indicators.{slow}"])
        for fast, slow in p.MA_PAIRS
    ]
    feats += [
        _f("atr_pct", "trend", "atr_14 / close: average true range as a fraction of the price.",
           ["technical_indicators.atr_14", "ohlcv_bars.close"]),
        _f("macd_pct", "trend", "macd / close: MACD line scaled by the price.",
           ["technical_indicators.macd", "ohlcv_bars.close"]),
        _f("macd_hist_pct", "trend", "macd_hist / close: MACD histogram scaled by the price.",
           ["technical_indicators.macd_hist", "ohlcv_bars.close"]),
    ]
    return feats


def _calendar_features() -> list[FeatureDef]:
    g, src = "calendar", ["ohlcv_bars.bar_start"]
    return [
        _f("hour_of_day", g, "UTC hour of bar_start (0-23).", src, "int"),
        _f("day_of_week", g, "UTC weekday of bar_start (Monday = 0).", src, "int"),
        _f("is_weekend", g, "bar_start falls on a UTC Saturday or Sunday (US markets closed).", src, "bool"),
        _f("hour_sin", g, "sin(2 pi hour_of_day / 24).", src),
        _f("hour_cos", g, "cos(2 pi hour_of_day / 24).", src),
    ]


def _cross_section_features() -> list[FeatureDef]:
    g, src = "cross_section", ["technical_indicators.return_1 (all symbols, same bar_start and interval)"]
    ref = p.REFERENCE_SYMBOL
    return [
        _f("xs_symbols", g, "Symbols with a row at the same bar_start and bar_interval.", ["ohlcv_bars.symbol"],
           "int"),
        _f("xs_return_1_mean", g, "Mean return_1 across symbols at the same bar_start and bar_interval "
           "(bars close together, so nothing later is used).", src),
        _f("xs_return_1_rank", g, "Percentile rank (0-1] of the symbol's return_1 among the symbols at the "
           "same bar_start and bar_interval.", src),
        _f(f"return_1_vs_{ref.lower()}", g, f"return_1 minus {ref}'s return_1 at the same bar_start and "
           f"bar_interval (NaN without a {ref} bar).", src),
    ]


SENTIMENT_STATS = {
    "count": "number of scored items",
    "mean": "mean score (score in [-1, 1])",
    "wmean": "confidence-weighted mean score: sum(confidence * score) / sum(confidence)",
    "pos_share": "share of items labelled positive",
    "neg_share": "share of items labelled negative",
}
SENTIMENT_SCOPES = {
    "sym": "news/social items that mention the row's symbol (symbols_mentioned)",
    "mkt": "all news/social items (market-wide)",
}


def sentiment_column(scope: str, window: str, stat: str) -> str:
    return f"sent_{scope}_{window}_{stat}"


def _sentiment_features() -> list[FeatureDef]:
    feats = []
    for scope, scope_text in SENTIMENT_SCOPES.items():
        for window in p.SENTIMENT_WINDOWS:
            for stat, stat_text in SENTIMENT_STATS.items():
                inputs = ["sentiment_scores.published_at"]
                inputs += {"count": [], "mean": ["sentiment_scores.score"],
                           "wmean": ["sentiment_scores.score", "sentiment_scores.confidence"],
                           "pos_share": ["sentiment_scores.label"], "neg_share": ["sentiment_scores.label"]}[stat]
                if scope == "sym":
                    inputs.append("sentiment_scores.symbols_mentioned")
                kind = "int" if stat == "count" else "float"
                empty = "0 when no item" if stat == "count" else "NaN when no item"
                feats.append(_f(
                    sentiment_column(scope, window, stat), "sentiment",
                    f"{stat_text.capitalize()} over {scope_text} published in the {window} up to asof_time "
                    f"(as_of - {window} < published_at <= as_of); {empty}. All NaN when no sentiment was loaded "
                    "for the window (dq_sentiment_present).", inputs, kind))
    return feats


def macro_column(series_id: str) -> str:
    return f"macro_{series_id.lower()}"


def is_rate(unit: str) -> bool:
    """Rates (percent units) change by differences, everything else by ratios."""
    return "percent" in unit.lower()


def _macro_features() -> list[FeatureDef]:
    feats = []
    for s in macro_series_catalog():
        max_age = p.MACRO_MAX_AGE[s.frequency].days
        src = [f"macro_series[{s.id}].value", f"macro_series[{s.id}].available_at"]
        feats.append(_f(
            macro_column(s.id), "macro",
            f"{s.description} ({s.provider} {s.symbol}, {s.unit}, {s.frequency}): the newest observation whose "
            f"available_at <= asof_time (as-of, never by date: a Friday close is carried over the weekend, a "
            f"release after asof_time is not visible). NaN when none is known or the observation is more than "
            f"{max_age} days old.", src))
        change = ("difference from the previous observation, in percentage points" if is_rate(s.unit)
                  else "relative change from the previous observation: value / previous - 1")
        feats.append(_f(
            f"{macro_column(s.id)}_chg", "macro",
            f"{s.id} daily change as known at asof_time: {change} (the previous {s.frequency} observation, "
            f"also known by then). NaN when either is missing.", src))
    return feats


def _cross_asset_features() -> list[FeatureDef]:
    feats = []
    for name, kind, a, b in p.CROSS_ASSET:
        text = {"ratio": f"{a} / {b}", "difference": f"{a} - {b}",
                "return_spread": f"daily change of {a} - daily change of {b} (macro_{a.lower()}_chg - "
                                 f"macro_{b.lower()}_chg)"}[kind]
        feats.append(_f(name, "cross_asset", f"{text}, each as known at asof_time.",
                        [f"macro_series[{a}]", f"macro_series[{b}]"]))
    return feats


def onchain_column(chain: str, metric: str) -> str:
    return f"onchain_{chain}_{metric}".lower()


def _onchain_features() -> list[FeatureDef]:
    feats = []
    days = p.ONCHAIN_MAX_AGE.days
    for m in onchain_metrics_catalog():
        src = [f"onchain_metrics[{m.chain}/{m.metric}].value", f"onchain_metrics[{m.chain}/{m.metric}].date"]
        feats.append(_f(
            onchain_column(m.chain, m.metric), "onchain",
            f"{m.description} ({m.provider}, {m.unit}): value of the newest UTC day that had closed by asof_time "
            f"(usable from max(available_at, day + 1 day)). NaN when none of the last {days} days is known.", src))
        feats.append(_f(
            f"{onchain_column(m.chain, m.metric)}_chg", "onchain",
            f"{m.chain}/{m.metric}: value / value of the previous published day - 1, both known at asof_time.",
            src))
    return feats


def _quality_features() -> list[FeatureDef]:
    g = "quality"
    return [
        _f("dq_has_indicators", g, "technical_indicators has a row for this bar and interval.",
           ["technical_indicators"], "bool"),
        _f("dq_indicators_warm", g, "sma_200 is known: the series is past the longest indicator warm-up.",
           ["technical_indicators.sma_200"], "bool"),
        _f("dq_has_volume", g, "The bar has a volume (volume-based indicators can be known).",
           ["ohlcv_bars.volume"], "bool"),
        _f("dq_bar_intervals_available", g, "Bar intervals ohlcv_bars had for this symbol in this hour "
           "(the finest one is featured).", ["ohlcv_bars.interval"], "int"),
        _f("dq_sentiment_present", g, "At least one scored item was published in the 24h up to asof_time "
           "(otherwise every sent_* column is NaN: sentiment missing, not neutral).",
           ["sentiment_scores.published_at"], "bool"),
        _f("dq_sentiment_fallback_share_24h", g, "Share of the market-wide 24h items scored by the VADER fallback "
           "instead of a transformer model.", ["sentiment_scores.model"]),
        _f("dq_macro_series_present", g, "Macro series (of the catalog) with a known, not-too-old value at "
           "asof_time.", ["macro_series"], "int"),
        _f("dq_macro_newest_age_hours", g, "Hours from the newest macro availability (available_at) to "
           "asof_time: a large value means the macro feed is behind.", ["macro_series.available_at"]),
        _f("dq_onchain_metrics_present", g, "On-chain metrics (of the catalog) with a known value at asof_time.",
           ["onchain_metrics"], "int"),
        _f("dq_onchain_newest_age_hours", g, "Hours from the end of the newest known on-chain day to asof_time.",
           ["onchain_metrics.date"]),
    ]


def _derivative_and_volume_features() -> list[FeatureDef]:
    """Derivatives (as-of) and exchange-volume columns: crypto_assets/features/derivatives.py."""
    return [_f(name, group, description, inputs, kind) for name, kind, group, description, inputs in DERIVATIVE_SPECS]


def _narrative_features() -> list[FeatureDef]:
    """LLM news narrative themes (as-of, optional input): crypto_assets/features/narratives.py."""
    return [_f(name, group, description, inputs, kind) for name, kind, group, description, inputs in NARRATIVE_SPECS]


def _intelligence_features() -> list[FeatureDef]:
    """Market regimes and Fear & Greed (as-of, optional inputs): crypto_assets/features/intelligence.py."""
    return [_f(name, group, description, inputs, kind) for name, kind, group, description, inputs in INTELLIGENCE_SPECS]


def _build() -> tuple[FeatureDef, ...]:
    feats = (
        _bar_features() + _indicator_features() + _trend_features() + _calendar_features()
        + _cross_section_features() + _sentiment_features() + _macro_features() + _cross_asset_features()
        + _onchain_features() + _quality_features() + _derivative_and_volume_features() + _narrative_features()
        + _intelligence_features()
    )
    names = [f.name for f in (*KEY_COLUMNS, *feats)]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate feature names: {sorted({n for n in names if names.count(n) > 1})}")
    return tuple(feats)


FEATURES: tuple[FeatureDef, ...] = _build()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
ALL_COLUMNS: tuple[FeatureDef, ...] = (*KEY_COLUMNS, *FEATURES)


def by_group(group: str) -> list[str]:
    return [f.name for f in FEATURES if f.group == group]


# -- the document ---------------------------------------------------------------------------

_GROUP_TITLES = {
    "key": "Keys and row description",
    "bar": "Bar (price and volume)",
    "indicator": "Technical indicators",
    "trend": "Price relative to indicators",
    "calendar": "Calendar",
    "cross_section": "Cross-section (all symbols at the same bar)",
    "sentiment": "Sentiment",
    "macro": "Macro (as-of)",
    "cross_asset": "Cross-asset",
    "onchain": "On-chain (as-of, previous closed day)",
    "derivatives": "Derivatives (as-of: funding, open interest, basis)",
    "volume": "Exchange volume of the bar",
    "narratives": "LLM news narratives (as-of, optional input)",
    "regime": "Market regimes (as of the bar's hour start, optional input)",
    "fear_greed": "Fear & Greed index (as-of, optional input)",
    "quality": "Data quality",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_data_dictionary() -> str:
    """The Markdown data dictionary of `ml_features` (what docs/data_dictionary.md must contain)."""
    lines = [
        "# `ml_features` data dictionary",
        "",
        "<!-- Generated by `python -m crypto_assets.features.dictionary` from "
        "crypto_assets/features/dictionary.py. Do not edit by hand. -->",
        "",
        "One row per (symbol, bar_start), hourly partitions by bar_start. The row's as-of time is "
        "`asof_time` = the bar's close time: every feature uses only inputs available at or before it "
        "(bars and indicators by bar_end, sentiment by published_at, macro by available_at, on-chain daily "
        "values once their UTC day has closed). See docs/features.md.",
        "",
        f"{len(FEATURES)} feature columns, {len(KEY_COLUMNS)} key/description columns, plus `source` and "
        "`ingested_at`.",
        "",
    ]
    for group, title in _GROUP_TITLES.items():
        members = [f for f in ALL_COLUMNS if f.group == group]
        if not members:
            continue
        lines += [f"## {title}", "", "| column | type | description | inputs |", "|---|---|---|---|"]
        lines += [
            f"| `{f.name}` | {f.kind} | {_cell(f.description)} | {_cell(', '.join(f.inputs))} |" for f in members
        ]
        lines.append("")
    lines += [
        "## Provenance",
        "",
        "| column | type | description | inputs |",
        "|---|---|---|---|",
        "| `source` | str | Always `computed`. | — |",
        "| `ingested_at` | datetime | When the pipeline wrote the row (UTC). | — |",
        "",
    ]
    return "\n".join(lines)


def write_data_dictionary(path: Path | str = DOC_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_data_dictionary())
    return path


if __name__ == "__main__":
    print(write_data_dictionary())

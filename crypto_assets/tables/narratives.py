"""Tables of the LLM news narratives: `news_narratives` (one row per hour) and `llm_cache`."""

from crypto_assets.llm.narratives import THEMES
from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

NEWS_NARRATIVES = TableSpec(
    name="news_narratives",
    description=(
        "LLM-written narrative of each hour's news (Ollama, optional): theme strengths, the coins each theme "
        "touches and a short summary, validated against a JSON schema. One row per hour that had articles and "
        "an LLM configured; status='failed' rows record an hour whose answers never validated (no values). "
        "Empty when no LLM is configured."
    ),
    columns=(
        Column("hour_start", "datetime", "Start of the hour of news (UTC): the partition time.", nullable=False),
        Column("status", "str", "ok, or failed (every attempt returned invalid output; values are NULL).",
               nullable=False),
        Column("summary", "text", "Narrative summary written by the model (at most 600 characters)."),
        Column("themes_json", "text", "The validated themes as JSON: theme, strength, coins, evidence (article numbers)."),
        *(Column(f"strength_{t}", "float", f"Strength of the {t} theme in [0, 1]; 0 when the model did not "
                 "report it; NULL for a failed hour.") for t in THEMES),
        Column("top_theme", "str", "The theme with the highest strength (NULL: none or failed)."),
        Column("coins", "text", "Tickers any theme touches, sorted, separated by '|'."),
        Column("article_count", "int", "Articles published in the hour."),
        Column("articles_sent", "int", "Articles sent to the model (newest first, at most 60)."),
        Column("available_at", "datetime", "Published time of the newest article sent: the narrative uses nothing "
               "later (the as-of time for features)."),
        Column("model", "str", "Ollama model name.", nullable=False),
        Column("prompt_version", "str", "Version of prompt + schema (crypto_assets/llm/narratives.py)."),
        Column("cache_key", "str", "sha256 of (sorted article ids, model, prompt version): the llm_cache key."),
        Column("attempts", "int", "Model calls this answer took (0 when it came from the cache)."),
        Column("cached", "bool", "True when the answer came from llm_cache (no model call in this run)."),
        Column("generated_at", "datetime", "When the model produced the answer."),
        Column("error", "text", "Why each attempt was invalid (failed rows; ok rows: retries that preceded)."),
        *common_columns(),
    ),
    primary_key=("hour_start",),
    time_column="hour_start",
)

LLM_CACHE = TableSpec(
    name="llm_cache",
    description=(
        "Validated LLM answers by (inputs, model, prompt version), so a re-run of an hour whose articles have "
        "not changed does not ask the model again. Only valid answers are kept: a failed hour is asked again."
    ),
    columns=(
        Column("cache_key", "str", "sha256 of (sorted article ids, model, prompt version).", nullable=False),
        Column("task", "str", "What the answer is for, e.g. news_narratives."),
        Column("model", "str", "Ollama model name."),
        Column("prompt_version", "str", "Version of prompt + schema."),
        Column("article_ids", "text", "The article ids sent, sorted, separated by '|'."),
        Column("response_json", "text", "The validated answer (JSON)."),
        Column("attempts", "int", "Model calls it took."),
        Column("generated_at", "datetime", "When the model produced it."),
        *common_columns(),
    ),
    primary_key=("cache_key",),
)

TABLES = [NEWS_NARRATIVES, LLM_CACHE]

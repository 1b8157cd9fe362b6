"""Table of sentiment scores: one row per scored item and model."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

SENTIMENT_SCORES = TableSpec(
    name="sentiment_scores",
    description=(
        "Sentiment of each news article and social post, partitioned by the item's published time "
        "(so an item and its score share a partition). `model` says which model scored the row: a "
        "Hugging Face classifier (FinBERT for stock-market news, CryptoBERT for crypto news and social posts by "
        "default) or `vader` when "
        "no transformer model could be loaded."
    ),
    columns=(
        Column("item_id", "str", "news_articles.article_id or social_posts.post_id.", nullable=False),
        Column("item_type", "str", "news or social.", nullable=False),
        Column("market_type", "str", "stock (news from markets/macro feeds, scored by the finance model) or crypto "
               "(crypto outlets, the Guardian's crypto query, social posts; scored by the crypto model)."),
        Column("model", "str", "Model name or local path as configured, or 'vader'.", nullable=False),
        Column(
            "model_version",
            "text",
            "Transformers: <config _name_or_path>@commit:<hub commit> or @sha256:<weights hash>, "
            "'+int8-dynamic' when quantized; VADER: vaderSentiment==<version>.",
        ),
        Column("label", "str", "positive, negative or neutral (mapped from the model's label names)."),
        Column(
            "score",
            "float",
            "Sentiment in [-1, 1]: P(positive) - P(negative) for transformers; VADER's compound score for vader.",
        ),
        Column("confidence", "float", "Probability of the label (transformers); see docs/sentiment.md for vader."),
        Column("p_positive", "float", "Probability of the positive/bullish class (vader: positive share)."),
        Column("p_negative", "float", "Probability of the negative/bearish class (vader: negative share)."),
        Column("p_neutral", "float", "Probability of the neutral class; 0 for two-class models (vader: neutral share)."),
        Column("published_at", "datetime", "The item's published time (UTC): the partition time.", nullable=False),
        Column("symbols_mentioned", "text", "Tickers the item mentions, copied from the item (sorted, separated by '|')."),
        Column("text_chars", "int", "Characters of the text that was scored (title + lead)."),
        *common_columns(),
    ),
    primary_key=("item_id", "model"),
    time_column="published_at",
)

TABLES = [SENTIMENT_SCORES]

"""Table of social posts (Reddit submissions)."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

SOCIAL_POSTS = TableSpec(
    name="social_posts",
    description=(
        "Reddit submissions from the subreddits in resources/subreddits.yaml, partitioned by the hour "
        "they were created (UTC). Scores and comment counts are as observed by the latest run that "
        "still saw the post in its listing; posts that left the listing keep their last observation."
    ),
    columns=(
        Column("post_id", "str", "Reddit fullname of the submission (t3_...).", nullable=False),
        Column("published_at", "datetime", "created_utc of the submission: the partition time.", nullable=False),
        Column("subreddit", "str", "Subreddit display name."),
        Column("author", "str", "Author name; empty for deleted accounts."),
        Column("title", "text", "Submission title."),
        Column("selftext", "text", "Body of a self post (markdown); empty for link posts."),
        Column("url", "text", "Link target (the post itself for self posts)."),
        Column("permalink", "text", "https://www.reddit.com permalink of the submission."),
        Column("score", "int", "Score when last observed."),
        Column("num_comments", "int", "Comment count when last observed."),
        Column("upvote_ratio", "float", "Upvote ratio when last observed; empty when the listing lacks it."),
        Column("over_18", "bool", "Marked NSFW."),
        Column("is_self", "bool", "Self (text) post rather than a link."),
        Column("symbols_mentioned", "text", "Tickers of the coin universe mentioned in title or body, sorted, "
               "separated by '|'; empty when none."),
        *common_columns(),
    ),
    primary_key=("post_id",),
    time_column="published_at",
)

TABLES = [SOCIAL_POSTS]

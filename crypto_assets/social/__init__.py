"""Social posts: Reddit via praw."""

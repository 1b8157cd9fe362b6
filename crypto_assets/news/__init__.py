"""News: feed catalog and parser, Guardian API, canonical URLs, coin mention tagging."""

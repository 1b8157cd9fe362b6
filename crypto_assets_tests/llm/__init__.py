"""Tests of crypto_assets.llm (and the assets of its domain)."""

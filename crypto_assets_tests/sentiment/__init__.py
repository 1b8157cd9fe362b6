"""Tests of crypto_assets.sentiment (and the assets of its domain)."""

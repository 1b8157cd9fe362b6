"""Tests of crypto_assets.sources (and the assets of its domain)."""

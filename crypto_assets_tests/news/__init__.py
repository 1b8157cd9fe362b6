"""Tests of crypto_assets.news (and the assets of its domain)."""

"""Tests of crypto_assets.freshness (and the assets of its domain)."""

"""Tests of crypto_assets.metrics (and the assets of its domain)."""

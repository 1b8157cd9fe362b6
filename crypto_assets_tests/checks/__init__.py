"""Tests of crypto_assets.checks (and the assets of its domain)."""

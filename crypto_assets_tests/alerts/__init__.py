"""Tests of crypto_assets.alerts (and the assets of its domain)."""

"""Tests of crypto_assets.health (and the assets of its domain)."""

"""Tests of crypto_assets.features (and the assets of its domain)."""

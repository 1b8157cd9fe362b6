"""Tests of crypto_assets.indicators (and the assets of its domain)."""

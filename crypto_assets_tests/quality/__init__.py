"""Tests of crypto_assets.quality (and the assets of its domain)."""

"""Tests of crypto_assets.intelligence (and the assets of its domain)."""

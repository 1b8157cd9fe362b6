"""Tests of crypto_assets.social (and the assets of its domain)."""

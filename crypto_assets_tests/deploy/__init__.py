"""Tests of crypto_assets.deploy (and the assets of its domain)."""

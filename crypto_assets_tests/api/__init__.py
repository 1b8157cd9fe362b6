"""Tests of crypto_assets.api (and the assets of its domain)."""

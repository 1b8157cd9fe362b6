"""Tests of crypto_assets.warehouse (and the assets of its domain)."""

"""Tests of crypto_assets.automation (and the assets of its domain)."""

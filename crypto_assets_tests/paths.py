"""Where the tests' own files are: the shared recorded data and the repository root.

Tests sit one folder per package (crypto_assets_tests/<package>/); the recorded payloads they read
stay in one place, crypto_assets_tests/data/, with their SOURCES and attribution files.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent

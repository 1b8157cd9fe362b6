"""The checks tests' project graph: the real assets and checks in replay mode on one SQLite
warehouse per test module."""

from __future__ import annotations

import pytest

from crypto_assets.warehouse.resource import get_warehouse
from crypto_assets_tests.graph_helpers import ProjectGraph


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    get_warehouse.cache_clear()
    yield ProjectGraph(f"sqlite:///{tmp_path_factory.mktemp('checks') / 'warehouse.sqlite'}")
    get_warehouse.cache_clear()

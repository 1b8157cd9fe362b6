"""Every asset's key, group, deps, partitions, backfill policy, automation condition, freshness
policy, checks and pools are in one reviewed file: a graph change is always a visible diff."""

import pytest

import difflib

from crypto_assets_tests.asset_graph_snapshot import SNAPSHOT, render_clean

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds


def test_the_asset_graph_matches_its_reviewed_snapshot():
    now = render_clean()
    assert now.count(":\n  group:") >= 15  # every asset rendered, not an empty text
    expected = SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), now.splitlines(True), "snapshot", "code"))
    assert now == expected, (
        "the asset graph changed; review the diff, then run "
        "`.venv/bin/python -m crypto_assets_tests.asset_graph_snapshot --write`:\n" + diff)

"""The code location loads and every asset is described, grouped and partitioned as designed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from crypto_assets.definitions import defs
from crypto_assets.partitions import DAILY, HOURLY
from crypto_assets.tables import all_tables

EXPECTED = {
    # asset: (group, partitions)
    "coin_universe": ("reference", None),
    "price_observations": ("ingest", HOURLY),
    "ohlcv_bars": ("ingest", HOURLY),
    "news_articles": ("ingest", HOURLY),
    "social_posts": ("ingest", HOURLY),
    "macro_series": ("ingest", DAILY),
    "onchain_metrics": ("ingest", DAILY),
    "sentiment_scores": ("enrich", HOURLY),
    "technical_indicators": ("enrich", HOURLY),
    "ml_features": ("features", HOURLY),
}


def _specs():
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_asset_group_partitions_description(name):
    specs = _specs()
    spec = specs[name]
    group, partitions = EXPECTED[name]
    assert spec.group_name == group
    assert spec.description and len(spec.description) > 40
    assert spec.partitions_def == partitions
    assert name in all_tables(), f"{name} has no table declared in code"


def test_hourly_partitions_include_the_current_hour():
    assert HOURLY.end_offset == 1 and HOURLY.timezone == "UTC"


def _policies(env: dict) -> dict[str, tuple]:
    """{asset: (policy type, max partitions per run)} of a freshly loaded code location under `env`."""
    code = ("import json, dagster as dg; from crypto_assets.definitions import defs; g = defs.resolve_asset_graph(); "
            "print(json.dumps({k.to_user_string(): [str(g.get(k).backfill_policy.policy_type), "
            "g.get(k).backfill_policy.max_partitions_per_run] for k in g.get_all_asset_keys() "
            "if g.get(k).partitions_def is not None}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, timeout=300)
    return {k: tuple(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


@pytest.mark.slow
def test_backfills_run_in_chunks_sized_by_the_setting_and_in_one_run_when_it_is_zero():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():  # the default: one week of hours per run, a week of days
        node = graph.get(key)
        if node.partitions_def is not None:
            per_run = 168 if node.partitions_def == HOURLY else 7
            assert node.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=per_run), key
    chunked = _policies({"CRYPTO_BACKFILL_HOURS_PER_RUN": "48"})
    assert chunked["ml_features"] == ("BackfillPolicyType.MULTI_RUN", 48)
    assert chunked["macro_series"] == ("BackfillPolicyType.MULTI_RUN", 2)
    single = _policies({"CRYPTO_BACKFILL_HOURS_PER_RUN": "0"})  # what `dg launch --partition-range` needs
    assert set(single.values()) == {("BackfillPolicyType.SINGLE_RUN", None)}, single


@pytest.mark.slow
def test_importing_the_package_does_not_import_ml_libraries():
    code = "import crypto_assets, crypto_assets.definitions, sys; print(sorted(m for m in ('torch', 'transformers', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

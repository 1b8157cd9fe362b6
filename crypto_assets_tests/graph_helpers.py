"""Helpers for tests that run the project's real graph in replay mode on a temp warehouse."""

from __future__ import annotations

import dagster as dg

from crypto_assets.assets import all_assets
from crypto_assets.assets.common import range_tags
from crypto_assets.automation.policies import apply_policies
from crypto_assets.checks.data_checks import all_data_checks
from crypto_assets.resources import build_resources


class ProjectGraph:
    """The project's assets (with policies) and checks, bound to replay sources and a warehouse."""

    def __init__(self, warehouse_url: str, replay_dir: str | None = None):
        self.assets = apply_policies(all_assets())
        self.checks = all_data_checks(self.assets)
        self.resources = build_resources(mode="replay", warehouse_url=warehouse_url)
        if replay_dir:
            self.resources["coingecko"] = self.resources["coingecko"].model_copy(update={"replay_dir": replay_dir})
        self.defs = dg.Definitions(assets=self.assets, asset_checks=self.checks, resources=self.resources)

    def materialize(self, instance, selection, *, partition=None, range_=None, raise_on_error=True):
        """Materialize `selection` together with the checks that target it."""
        tags = range_tags(*range_) if range_ else {}
        return dg.materialize(
            [*self.assets, *self.checks],
            selection=dg.AssetSelection.assets(*selection),
            instance=instance,
            resources=self.resources,
            partition_key=partition,
            tags=tags,
            raise_on_error=raise_on_error,
        )


def row_counts_by_partition(result, asset: str | None = None) -> dict[str, int]:
    """{partition: dagster/row_count} over a run's materializations (each partition carries its own)."""
    events = [e.materialization for e in result.get_asset_materialization_events()
              if asset is None or e.materialization.asset_key.to_user_string() == asset]
    return {m.partition: m.metadata["dagster/row_count"].value for m in events}

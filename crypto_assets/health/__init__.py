"""Platform health: a 0-100 score from the freshness and check states of every dataset.

- `health_report(instance, datasets_or_keys) -> HealthReport` (score, band, per-dataset table)
- `datasets_in(asset_graph)`: the datasets of a code location, with their checks and policies
- `platform_health` asset (group "health") + a 15-minute schedule: `ASSETS`, `JOBS`, `SCHEDULES`
- `main(argv)`: the `crypto-assets health` command (see `crypto_assets.health.cli`)
"""

from crypto_assets.health.assets import ASSETS, JOBS, SCHEDULES, platform_health
from crypto_assets.health.cli import main
from crypto_assets.health.score import BANDS, DatasetHealth, HealthReport, band, health_report
from crypto_assets.health.states import Dataset, datasets_in

__all__ = [
    "ASSETS", "BANDS", "JOBS", "SCHEDULES", "Dataset", "DatasetHealth", "HealthReport", "band",
    "datasets_in", "health_report", "main", "platform_health",
]

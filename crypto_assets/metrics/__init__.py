"""Prometheus metrics of the platform (`crypto-assets metrics --port 9464`).

- `crypto_assets.metrics.exporter`: a collector that reads the Dagster instance and the warehouse
  at scrape time: per dataset data-time freshness (`crypto_assets.freshness`), the health score
  (`crypto_assets.health`), rows of the newest partition; per source requests, retries, 429s,
  errors and budget left; run durations and outcomes by job and asset.
- `crypto_assets.metrics.server`: the `crypto-assets metrics` command (HTTP `/metrics`, `/health`,
  `/ready`).
- The data API serves its own `/metrics` (`crypto_assets.api.metrics`).

Nothing here is imported by `import crypto_assets`; prometheus-client comes with the `api` extra.
Metric names and what they mean: docs/operations.md, "Prometheus and Grafana".
"""

"""Parts of the scale benchmark (benchmarks/bench_scale.py): `data` writes the synthetic replay
inputs, `backfill` runs and times one backfill size in its own process, `ui` measures the Dagster
UI's asset-graph queries."""

"""Market intelligence computed from the warehouse: regimes, anomalies (pure functions, no Dagster).

See docs/intelligence.md for the methods and their limits.
"""

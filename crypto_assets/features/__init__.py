"""Feature-building helpers shared by the feature assets (no Dagster code here)."""

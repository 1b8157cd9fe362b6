"""Partition definitions shared by every asset.

Symbols are rows inside a partition, never a partition dimension: symbol x hour would pass
Dagster's ~100k partitions per asset within weeks. The hourly history starts in April 2021
so that the recorded payloads used by replay mode (May 2021) fall inside the partition set.
"""

import dagster as dg

HOURLY_START = "2021-04-01-00:00"
DAILY_START = "2019-01-01"

# end_offset=1: the current, still-open hour is a partition too, so the live snapshot
# taken every 5 minutes has somewhere to land.
HOURLY = dg.HourlyPartitionsDefinition(start_date=HOURLY_START, timezone="UTC", end_offset=1)
DAILY = dg.DailyPartitionsDefinition(start_date=DAILY_START, timezone="UTC")

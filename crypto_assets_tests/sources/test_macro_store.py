"""A `date` time column (macro_series.observation_date) in the warehouse's window writes/reads.

A date D stands for the instant D 00:00 UTC. Before the fix, SQLite compared a DATE column with
a bound datetime as text ('2024-01-02' < '2024-01-02 00:00:00'), shifting every window by one
day: re-writing day D deleted day D+1.
"""

from datetime import date

import pandas as pd
import pytest

from crypto_assets.tables.macro import MACRO_SERIES
from crypto_assets.warehouse.factory import open_warehouse


def frame(days, value):
    return pd.DataFrame({
        "series_id": "VIX", "observation_date": days, "value": value,
        "available_at": [pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=21) for d in days],
        "provider": "yahoo", "source": "test", "ingested_at": pd.Timestamp("2024-01-10", tz="UTC"),
    })


@pytest.fixture(params=["sqlite", "mysql"])
def warehouse(request):
    url = request.getfixturevalue(f"{request.param}_url")
    wh = open_warehouse(url)
    yield wh
    wh.dispose()


def test_date_windows_are_exact(warehouse):
    d1, d2, d3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
    for d in (d1, d2, d3):
        warehouse.replace_window(MACRO_SERIES, frame([d], 1.0), pd.Timestamp(d, tz="UTC"),
                                 pd.Timestamp(d, tz="UTC") + pd.Timedelta(days=1))
    # re-write day 2 with new values: days 1 and 3 untouched
    warehouse.replace_window(MACRO_SERIES, frame([d2], 2.0), "2024-01-02", "2024-01-03")
    rows = warehouse.read(MACRO_SERIES)
    assert list(zip(rows.observation_date, rows.value)) == [(d1, 1.0), (d2, 2.0), (d3, 1.0)]
    assert warehouse.read(MACRO_SERIES, "2024-01-02", "2024-01-03").observation_date.tolist() == [d2]
    assert warehouse.read(MACRO_SERIES, "2024-01-01 12:00", "2024-01-03").observation_date.tolist() == [d2]
    with pytest.raises(ValueError, match="outside the window"):
        warehouse.replace_window(MACRO_SERIES, frame([d3], 5.0), "2024-01-02", "2024-01-03")

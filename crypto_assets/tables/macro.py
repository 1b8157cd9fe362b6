"""The macro table: one row per series and observation date, with when it became known."""

from crypto_assets.warehouse.schema import Column, TableSpec, common_columns

MACRO_SERIES = TableSpec(
    name="macro_series",
    description=(
        "Macro and cross-asset series (Yahoo Finance closes, FRED first releases), one row per real "
        "observation: no row for weekends or holidays, nothing forward-filled. Join to bars by "
        "`available_at` (as-of), never by date. Catalog: resources/macro_series.yaml."
    ),
    columns=(
        Column("series_id", "str", "Series id from resources/macro_series.yaml (e.g. VIX, DGS10).", nullable=False),
        Column("observation_date", "date", "Date the value describes: the trading date in the exchange's "
               "timezone (Yahoo) or FRED's observation date (period start for monthly series).", nullable=False),
        Column("value", "float", "The value as first published (Yahoo: unadjusted close; FRED: first vintage)."),
        Column("available_at", "datetime", "When the value became known (UTC): the series' market close "
               "(Yahoo) or the end of its first vintage day in US Central time (FRED realtime_start)."),
        Column("provider", "str", "yahoo or fred."),
        *common_columns(),
    ),
    primary_key=("series_id", "observation_date"),
    time_column="observation_date",
    indexes=(("series_id", "available_at"),),
)

TABLES = [MACRO_SERIES]

"""The quarantine: records a source gave us that we could not accept, with the reason."""

from crypto_assets.warehouse.schema import Column, TableSpec

QUARANTINE = TableSpec(
    name="quarantine",
    description=(
        "Rejected input records, one row per record and reason. Rows belong to the asset partition "
        "whose run saw them, so re-running a partition replaces its quarantine rows too."
    ),
    columns=(
        Column("asset", "str", "Asset whose run rejected the record.", nullable=False),
        Column("partition_start", "datetime", "Start of the partition window the run covered.", nullable=False),
        Column("source", "str", "Provider of the record."),
        Column("reason", "text", "Why it was rejected."),
        Column("record_key", "text", "Identifying fields of the record, when it has any (e.g. feed|url: "
               "unbounded, so text and not a key)."),
        Column("record", "text", "The record as received (JSON)."),
        Column("ingested_at", "datetime", "When the run saw it."),
    ),
    primary_key=(),
    time_column="partition_start",
    indexes=(("asset", "partition_start"),),
)

TABLES = [QUARANTINE]

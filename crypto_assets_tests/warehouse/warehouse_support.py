"""Test helpers of the warehouse: a table with a column of every kind, and changes made behind the
code's back (a person renaming a column)."""

from __future__ import annotations

from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.schema import Column, TableSpec


def every_kind_spec(name: str, key: str, *extra: Column) -> TableSpec:
    """A table keyed by (`key`, `at`) with one optional column of each kind, then `extra`."""
    return TableSpec(
        name=name,
        description="one column of each kind",
        columns=(
            Column(key, "str", "key", nullable=False),
            Column("at", "datetime", "time", nullable=False),
            Column("when", "datetime", "optional time"),
            Column("day", "date", "optional date"),
            Column("n", "int", "optional int"),
            Column("flag", "bool", "optional bool"),
            Column("x", "float", "optional float"),
            Column("label", "str", "optional text"),
            *extra,
        ),
        primary_key=(key, "at"),
        time_column="at",
    )


def rename_column(url: str, table: str, old: str, new: str) -> None:
    """Rename a column the way someone with direct access would, on any backend."""
    wh = open_warehouse(url)
    if wh.dialect == "delta":
        import deltalake

        path = f"{wh.root}/{table}"
        data = deltalake.DeltaTable(path).to_pyarrow_table()
        data = data.rename_columns([new if name == old else name for name in data.column_names])
        deltalake.write_deltalake(path, data, mode="overwrite", schema_mode="overwrite",
                                  partition_by=["_part"] if "_part" in data.column_names else None)
    else:
        with wh.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    wh.dispose()

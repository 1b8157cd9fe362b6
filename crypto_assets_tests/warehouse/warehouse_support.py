"""Test helpers that change a warehouse behind the code's back (a person renaming a column)."""

from __future__ import annotations

from crypto_assets.warehouse.factory import open_warehouse


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

"""`open_warehouse(url)`: the warehouse implementation a URL names.

It sits above both back-ends (`delta.py`, `sql.py`) so that `store.py`, the interface they
implement, knows nothing of them (crypto_assets_tests/test_import_layers.py keeps the module graph
free of cycles).
"""

from __future__ import annotations

from crypto_assets.warehouse.delta import DeltaWarehouse
from crypto_assets.warehouse.sql import SqlWarehouse
from crypto_assets.warehouse.store import Warehouse, default_warehouse_url, is_delta_url


def open_warehouse(url: str | None = None, **options) -> Warehouse:
    """The warehouse at `url` (default: `default_warehouse_url()`: `CRYPTO_WAREHOUSE_URL`, else the
    embedded Delta Lake warehouse under DAGSTER_HOME).

    A `delta…://` URL opens a `DeltaWarehouse` (option: `storage_options`), any other URL an
    SQLAlchemy `SqlWarehouse` (option: `engine`). deltalake itself loads only when a Delta table is
    first used.
    """
    url = url or default_warehouse_url()
    impl = DeltaWarehouse if is_delta_url(url) else SqlWarehouse
    return impl(url, **options)


__all__ = ["open_warehouse"]

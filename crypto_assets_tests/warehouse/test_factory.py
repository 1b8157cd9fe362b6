"""`open_warehouse`: the back-end a URL names, and the interface that cannot be opened itself."""

import pytest
import sqlalchemy as sa

from crypto_assets.warehouse.delta import DeltaWarehouse
from crypto_assets.warehouse.factory import open_warehouse
from crypto_assets.warehouse.sql import SqlWarehouse
from crypto_assets.warehouse.store import WAREHOUSE_URL_ENV, Warehouse


def test_the_url_scheme_picks_the_back_end(delta_url, sqlite_url):
    delta = open_warehouse(delta_url, storage_options={"timeout": "5s"})
    assert type(delta) is DeltaWarehouse and delta.url == delta_url
    assert delta.storage_options == {"timeout": "5s"}
    assert type(open_warehouse("delta+s3://bucket/prefix")) is DeltaWarehouse
    engine = sa.create_engine(sqlite_url)
    sql = open_warehouse(sqlite_url, engine=engine)
    assert type(sql) is SqlWarehouse and sql.engine is engine and sql.dialect == "sqlite"


def test_without_a_url_the_environment_names_it(sqlite_url, monkeypatch):
    monkeypatch.setenv(WAREHOUSE_URL_ENV, sqlite_url)
    wh = open_warehouse()
    assert type(wh) is SqlWarehouse and wh.url == sqlite_url


def test_the_interface_alone_is_refused_naming_the_factory(sqlite_url):
    with pytest.raises(TypeError, match="open_warehouse"):
        Warehouse(sqlite_url)
    with pytest.raises(TypeError, match="open_warehouse"):
        Warehouse()

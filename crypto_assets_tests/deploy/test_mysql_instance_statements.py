"""The widening step's SQL and URL handling, without a server."""

from __future__ import annotations

import pytest

from crypto_assets.deploy.mysql_instance import BODY_COLUMNS, ColumnState, _alter_statement, mysql_engine


def test_alter_keeps_charset_collation_and_not_null():
    state = ColumnState("snapshots", "snapshot_body", "blob", nullable=False, charset=None, collation=None)
    assert _alter_statement(state, "LONGBLOB") == "ALTER TABLE `snapshots` MODIFY `snapshot_body` LONGBLOB NOT NULL"
    state = ColumnState("kvs", "value", "text", nullable=True, charset="utf8mb4", collation="utf8mb4_general_ci")
    assert _alter_statement(state, "LONGTEXT") == (
        "ALTER TABLE `kvs` MODIFY `value` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL"
    )


def test_body_columns_are_unique_and_long_types():
    names = [(c.table, c.column) for c in BODY_COLUMNS]
    assert len(names) == len(set(names))
    assert {c.target for c in BODY_COLUMNS} == {"LONGTEXT", "LONGBLOB"}


def test_engine_needs_a_mysql_url_with_a_database():
    with pytest.raises(ValueError, match="not a MySQL"):
        mysql_engine("sqlite:///x.db")
    with pytest.raises(ValueError, match="no database"):
        mysql_engine("mysql+pymysql://root@127.0.0.1:3306")
    # A bare mysql:// URL uses dagster-mysql's driver; the password never shows in errors.
    assert mysql_engine("mysql://u:pw@h:3306/d").url.drivername == "mysql+mysqlconnector"
    with pytest.raises(ValueError) as err:
        mysql_engine("mysql+pymysql://u:s3cret@h:3306")
    assert "s3cret" not in str(err.value)

"""Table schemas declared in code.

Every warehouse table is described once by a `TableSpec`; the SQL DDL, the schema check,
the Dagster column metadata and the dtype coercion on read all derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# Logical column kinds -> SQLAlchemy types. MySQL variants: DATETIME needs fsp=6 to keep
# microseconds, and TEXT caps at 64 KB, so long text uses MEDIUMTEXT.
#
# `str` is for keys and short labels: VARCHAR(191), because 191 characters x 4 bytes (utf8mb4)
# fit MySQL's index limits in any key. MySQL refuses a longer value while SQLite would store it
# silently, so the warehouse refuses one on both backends before writing (store.py), naming the
# column. Anything whose length the code does not bound (URLs, free text, error reasons,
# identifiers built from URLs or paths) is `text` and never part of a key.
STR_MAX_CHARS = 191
_SQL_TYPES = {
    "float": lambda: sa.Double(),
    "int": lambda: sa.BigInteger(),
    "bool": lambda: sa.Boolean(),
    "datetime": lambda: sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
    "date": lambda: sa.Date(),
    "str": lambda: sa.String(STR_MAX_CHARS),
    "text": lambda: sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
}

# What the database reports back for each kind (lower-case type names, by dialect family);
# used by the schema check to spot mistyped columns.
_REFLECTED_FAMILIES = {
    "float": ("double", "float", "real", "numeric", "decimal"),
    "int": ("bigint", "integer", "int", "smallint"),
    "bool": ("boolean", "tinyint", "bool"),
    "datetime": ("datetime", "timestamp"),
    "date": ("date",),
    "str": ("varchar", "string", "char", "text"),
    "text": ("text", "mediumtext", "longtext", "clob", "varchar"),
}
# Dialects that enforce a VARCHAR's length: there a `text` column found as VARCHAR is mistyped
# (`crypto-assets warehouse migrate` widens it). SQLite stores any length in a VARCHAR.
_LENGTH_ENFORCING = ("mysql", "mariadb")
_BOUNDED_STRINGS = ("varchar", "char", "string")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    description: str = ""
    nullable: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _SQL_TYPES:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")

    def sql_type(self) -> sa.types.TypeEngine:
        return _SQL_TYPES[self.kind]()

    @property
    def max_chars(self) -> int | None:
        """Longest value the column holds on every backend (None: unbounded)."""
        return STR_MAX_CHARS if self.kind == "str" else None

    def matches_reflected(self, reflected_type: sa.types.TypeEngine, dialect: str | None = None) -> bool:
        name = type(reflected_type).__name__.lower()
        if self.kind == "text" and dialect in _LENGTH_ENFORCING and self.widenable_from(reflected_type):
            return False
        return any(family in name for family in _REFLECTED_FAMILIES[self.kind])

    def widenable_from(self, reflected_type: sa.types.TypeEngine) -> bool:
        """A bounded string column that this `text` column can replace without losing anything."""
        name = type(reflected_type).__name__.lower()
        return self.kind == "text" and name in _BOUNDED_STRINGS


@dataclass(frozen=True)
class TableSpec:
    """One warehouse table. `time_column` is what a time partition filters on."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    time_column: str | None = None
    description: str = ""
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: duplicate column names")
        for key in (*self.primary_key, *(c for idx in self.indexes for c in idx)):
            if key not in names:
                raise ValueError(f"{self.name}: key column {key!r} is not declared")
        if self.time_column is not None and self.time_column not in names:
            raise ValueError(f"{self.name}: time column {self.time_column!r} is not declared")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def sa_table(self, metadata: sa.MetaData) -> sa.Table:
        if self.name in metadata.tables:
            return metadata.tables[self.name]
        cols = [
            sa.Column(
                c.name,
                c.sql_type(),
                primary_key=c.name in self.primary_key,
                nullable=c.nullable and c.name not in self.primary_key,
                autoincrement=False,
                comment=c.description or None,
            )
            for c in self.columns
        ]
        # utf8mb4 whatever the database's default: titles and posts carry 4-byte characters (emoji).
        table = sa.Table(self.name, metadata, *cols, comment=self.description or None, mysql_charset="utf8mb4")
        if self.time_column and self.time_column not in self.primary_key[:1]:
            sa.Index(f"ix_{self.name}_{self.time_column}", table.c[self.time_column])
        for idx in self.indexes:
            sa.Index(f"ix_{self.name}_{'_'.join(idx)}", *(table.c[c] for c in idx))
        return table


def common_columns() -> tuple[Column, ...]:
    """Every row says where it came from and when we got it."""
    return (
        Column("source", "str", "Provider the row came from (e.g. coingecko, replay:coingecko)."),
        Column("ingested_at", "datetime", "When the pipeline wrote the row (UTC)."),
    )

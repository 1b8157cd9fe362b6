"""Arrow types of the declared columns, and `Gather`: scanned Arrow batches put row by row at
their place in a read's result, which then becomes a pandas DataFrame or a pyarrow.Table.

Built for the wide feature table (`load("ml_features")` of a year: 2.8 M rows x 214 columns,
4.8 GB): the reader first scans only the columns that decide the rows' order and sorts them, which
gives every scanned row its place; then the other columns stream in batch by batch and each batch
is scattered straight into preallocated arrays (every float column into ONE 2-D block that
becomes the DataFrame's float block, or each Arrow column's buffer, without a copy). The whole
table never exists as Arrow first, so a read touches about half the memory, and each batch is
placed while it is in cache instead of whole columns being gathered afterwards. Strings and dates
are dictionary-encoded per batch: one Python object per distinct value, not one per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.warehouse.schema import TableSpec

_OBJECT_KINDS = ("str", "text", "date")  # pandas holds them as Python objects (str, datetime.date)


def arrow_type(kind: str):
    import pyarrow as pa

    return {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "datetime": pa.timestamp("us", tz="UTC"),
            "date": pa.date32(), "str": pa.string(), "text": pa.string()}[kind]


def arrow_fields(spec: TableSpec, names: list[str] | None = None) -> list:
    """The Arrow fields of `names` (default: every column); key columns are not nullable."""
    import pyarrow as pa

    return [pa.field(c.name, arrow_type(c.kind), nullable=c.nullable and c.name not in spec.primary_key)
            for c in (spec.columns if names is None else [spec.column(n) for n in names])]


class Gather:
    """The columns `names` of a result of `rows` rows, filled by `put`, read out by `frame` or `table`.

    `put(name, array, where)` places an Arrow array's values at `where` (a slice or an array of
    positions, one per value). Float and datetime nulls are kept as NaN / NaT, which is what pandas
    shows; with `arrow` their null masks are kept too, so the Arrow table has nulls where the
    stored table has them."""

    def __init__(self, spec: TableSpec, names: list[str], rows: int, *, arrow: bool = False):
        self.spec, self.names, self.rows, self.arrow = spec, names, rows, arrow
        self.fields = {f.name: f for f in arrow_fields(spec, names)}
        self.kinds = {name: spec.column(name).kind for name in names}
        self.floats = [name for name in names if self.kinds[name] == "float"]
        self.block = np.empty((len(self.floats), rows), dtype="float64")
        self.values = {name: self.block[j] for j, name in enumerate(self.floats)}
        self.nulls: dict[str, np.ndarray] = {}  # True where null; made at a column's first null
        self.uniques: dict[str, dict] = {}  # object kinds: {value: code}; values hold the codes (-1: null)
        for name in names:
            kind = self.kinds[name]
            if kind in ("int", "datetime"):
                self.values[name] = np.empty(rows, dtype="int64")
            elif kind == "bool":
                self.values[name] = np.empty(rows, dtype=bool)
            elif kind in _OBJECT_KINDS:
                self.values[name] = np.empty(rows, dtype="int32")
                self.uniques[name] = {}

    def put(self, name: str, array, where) -> None:
        import pyarrow.compute as pc

        kind, target = self.kinds[name], self.values[name]
        if array.type != self.fields[name].type:  # e.g. a Delta timestamp read with another unit
            array = array.cast(self.fields[name].type)
        if kind in _OBJECT_KINDS:
            encoded = array.dictionary_encode()
            lookup = self.uniques[name]
            codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in encoded.dictionary.to_pylist()),
                                dtype="int32", count=len(encoded.dictionary))
            codes = np.append(codes, np.int32(-1))  # the code of null
            target[where] = codes[pc.fill_null(encoded.indices, len(codes) - 1).to_numpy()]
            return
        if array.null_count and (self.arrow or kind in ("int", "bool")):
            mask = self.nulls.get(name)
            if mask is None:
                mask = self.nulls[name] = np.zeros(self.rows, dtype=bool)  # calloc: untouched pages cost nothing
            mask[where] = array.is_null().to_numpy(zero_copy_only=False)
        if kind in ("int", "bool") and array.null_count:
            array = pc.fill_null(array, False if kind == "bool" else 0)
        values = array.to_numpy(zero_copy_only=False)  # floats: NaN for null; datetimes: NaT
        target[where] = values.view("int64") if kind == "datetime" else values

    def frame(self) -> pd.DataFrame:
        """The declared pandas dtypes: float64, Int64, boolean, datetime64[us, UTC], object (str,
        datetime.date; None for NULL)."""
        frame = pd.DataFrame(self.block.T, columns=self.floats, copy=False)
        for position, name in enumerate(self.names):
            kind, values = self.kinds[name], self.values[name]
            if kind == "float":
                continue
            mask = self.nulls.get(name)
            if kind == "int":
                column = pd.arrays.IntegerArray(values, mask if mask is not None else np.zeros(self.rows, bool))
            elif kind == "bool":
                column = pd.arrays.BooleanArray(values, mask if mask is not None else np.zeros(self.rows, bool))
            elif kind == "datetime":
                column = pd.Series(values.view("datetime64[us]")).dt.tz_localize("UTC")
            else:
                objects = np.empty(len(self.uniques[name]) + 1, dtype=object)
                objects[:-1] = list(self.uniques[name])
                objects[-1] = None
                column = pd.Series(objects[values], dtype=object)  # stays object (not pandas' `str`)
            frame.insert(position, name, column)
        return frame

    def table(self):
        """A pyarrow.Table of the declared Arrow types; the numeric buffers are the gathered arrays
        themselves (no copy)."""
        import pyarrow as pa

        arrays = []
        for name in self.names:
            kind, values, field = self.kinds[name], self.values[name], self.fields[name]
            mask = self.nulls.get(name)
            if kind in _OBJECT_KINDS:
                dictionary = pa.array(list(self.uniques[name]), type=field.type)
                arrays.append(dictionary.take(pa.array(values, mask=values < 0)))
            elif kind == "bool":
                arrays.append(pa.array(values, mask=mask, type=field.type))
            else:
                valid = None if mask is None else pa.py_buffer(np.packbits(~mask, bitorder="little"))
                arrays.append(pa.Array.from_buffers(field.type, self.rows, [valid, pa.py_buffer(values)],
                                                    null_count=-1 if mask is not None else 0))
        return pa.Table.from_arrays(arrays, schema=pa.schema(list(self.fields.values())))


__all__ = ["Gather", "arrow_fields", "arrow_type"]

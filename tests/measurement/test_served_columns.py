"""Breakdown columns read from the served files' dictionaries, against the strings."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allscene.measurement import dictionaries
from allscene.measurement.dictionaries import DIMS, ROW_BITS, ServedColumns


def _files(tmp_path, columns: list[dict[str, list]]) -> list[str]:
    paths = []
    for k, cols in enumerate(columns):
        paths.append(str(tmp_path / f"s{k}.parquet"))
        pq.write_table(pa.table({c: pa.array(cols.get(c, [None] * len(cols["placement_id"])),
                                             pa.string()) for c in DIMS}), paths[-1],
                       row_group_size=2)
    return paths


def test_values_sorted_null_last_own_strings_numbered_in(tmp_path):
    paths = _files(tmp_path, [{"placement_id": ["p9", "p1", None, "p5"]},
                              {"placement_id": ["p5", "p7"]}])
    loc = [3, 1 << ROW_BITS, 2, 0, 5 << ROW_BITS]  # the last: from no served file
    imp = pa.table({"loc": loc, **{c: [None, None, None, None, "p0" if c == "placement_id"
                                       else None] for c in DIMS}})
    col = ServedColumns(imp, paths)("placement_id")
    chunk = col.chunks[0]
    assert chunk.dictionary.to_pylist() == ["p0", "p5", "p9", None]  # p1, p7: no row's
    assert col.to_pylist() == ["p5", "p5", None, "p9", "p0"]


def test_a_column_no_served_row_has_is_not_read(tmp_path, monkeypatch):
    paths = _files(tmp_path, [{"placement_id": ["a", "b", "c"]}, {"placement_id": ["d"]}])
    imp = pa.table({"loc": [0, 2, 1 << ROW_BITS]})  # every row served: no columns of its own
    cols = ServedColumns(imp, paths)
    assert cols("placement_id").to_pylist() == ["a", "c", "d"]

    def unread(*a, **k):
        raise AssertionError("read a column the statistics say is empty")

    monkeypatch.setattr(dictionaries.pq, "read_table", unread)
    col = cols("stage")
    assert col.to_pylist() == [None] * 3 and col.chunks[0].dictionary.to_pylist() == [None]
    with pytest.raises(AssertionError):
        cols("placement_id")  # has values: read


def test_values_in_one_row_group_only_are_read(tmp_path):
    paths = _files(tmp_path, [{"placement_id": ["a", "b", "c"], "scene": [None, None, "x"]}])
    imp = pa.table({"loc": np.arange(3)})
    assert ServedColumns(imp, paths)("scene").to_pylist() == [None, None, "x"]

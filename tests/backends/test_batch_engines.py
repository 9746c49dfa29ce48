"""One pipeline, every engine: the identity graph is identical on DuckDB and Spark."""

import pytest

from allscene.identity import device_graph
from allscene.storage.engines import connect


def rows(table):
    return sorted(table.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.fixture(scope="module")
def reference(world_log):
    """The DuckDB answer, computed on its own connection: the oracle for every engine."""
    devices, people = device_graph(world_log.table(con=connect("duckdb")))
    return rows(devices.to_pyarrow()), rows(people.to_pyarrow())


def test_identity_graph_is_identical_on_every_engine(world_log, batch_engine, reference):
    devices, people = device_graph(world_log.table(con=batch_engine))
    assert rows(devices.to_pyarrow()) == reference[0]
    assert rows(people.to_pyarrow()) == reference[1]
    assert len(reference[1]) == 3000

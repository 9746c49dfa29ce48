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


def test_tags_are_identical_on_every_engine(world_log, batch_engine, world):
    """The tag pipelines, written once, give the same tags on DuckDB and Spark."""
    from allscene.profiles.build import build_tags, read_reference

    ref = read_reference(world[0] / "reference")
    duck = connect("duckdb")
    devices, people = (t.to_pyarrow() for t in device_graph(world_log.table(con=duck)))
    expected = build_tags(world_log.table(con=duck), devices, people, ref)
    got = build_tags(world_log.table(con=batch_engine), devices, people, ref)
    assert got.num_rows == expected.num_rows > 30 * people.num_rows
    assert got.equals(expected)

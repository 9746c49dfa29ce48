from __future__ import annotations

from pathlib import Path

import duckdb
import pytest


@pytest.fixture()
def db(world: tuple[Path, dict]) -> duckdb.DuckDBPyConnection:
    out, _ = world
    con = duckdb.connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/events/*.parquet')")
    for name in ("people", "households", "devices"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/truth/{name}.parquet')")
    con.execute(f"CREATE VIEW scenes AS SELECT * FROM read_parquet('{out}/truth/scenes/*.parquet')")
    for name in ("geoip", "cell_towers", "regions"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{out}/reference/{name}.parquet')")
    # phone -> person
    con.execute("CREATE VIEW phones AS SELECT device_id, person_id, household_id FROM devices "
                "WHERE device_type = 'phone'")
    return con


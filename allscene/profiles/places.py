"""Resident place: where a person lives (home county) and works (work county).

Each location ping votes for a county with every signal it carries:

* **cell tower** (weight 2): the serving tower's county, from the tower table;
* **GPS** (weight 1): the county of the tower nearest to the fix (a 0.01° grid built once
  from the tower table);
* **IP** (weight 1): the geo-IP vendor's county, but only for fixed lines (home or business
  broadband): a mobile carrier's IP geolocates to its gateway, wherever the phone is.

The home county is the top vote at night (22:00-06:00 local), the work county the top vote
on weekdays 10:00-17:00 away from home (neither on the home network, nor on the cell or
GPS cell seen most at night), when the person is away on three days or more and on at least
60% of the weekdays seen (an outing now and then is not a workplace). Beside the combined answer, ``home_county_ip`` is what IP geolocation alone says
(the most frequent county of the person's IPs, any time): the Intel case, where a man who
lives in Changping and works in Haidian is placed in Haidian by IP alone.
"""

from __future__ import annotations

import ibis
import numpy as np
import pyarrow as pa
from ibis import _

from allscene.profiles.base import TagRows, local, personal, top

GRID = 100  # cells per degree: 0.01° (about 1 km)
NIGHT = (22, 6)  # local hours [from, to)
WORK_HOURS = (10, 17)
MIN_WORK_DAYS = 3
MIN_WORK_SHARE = 0.6  # of the weekdays seen, the share spent away from home
W_CELL, W_GPS, W_IP = 2, 1, 1


def gps_grid(towers: pa.Table, margin: float = 0.2) -> pa.Table:
    """``glat, glon, county_code``: for every 0.01° cell near a tower, the county of the
    nearest tower (so a GPS fix maps to a county with one equality join)."""
    from scipy.spatial import cKDTree

    lat = towers["lat"].to_numpy()
    lon = towers["lon"].to_numpy()
    county = towers["county_code"].to_numpy(zero_copy_only=False)
    cells: set[tuple[int, int]] = set()
    span = int(margin * GRID)
    for a, b in zip(np.floor(lat * GRID).astype(int), np.floor(lon * GRID).astype(int),
                    strict=True):
        for da in range(-span, span + 1, 1):
            for db in range(-span, span + 1, 1):
                cells.add((a + da, b + db))
    grid = np.array(sorted(cells), dtype=np.int64)
    # Distances in a plane where a degree of longitude is shorter (cos of the latitude).
    scale = np.cos(np.radians(np.mean(lat)))
    tree = cKDTree(np.c_[lat, lon * scale])
    _, nearest = tree.query(np.c_[(grid[:, 0] + 0.5) / GRID, (grid[:, 1] + 0.5) / GRID * scale])
    return pa.table({"glat": grid[:, 0], "glon": grid[:, 1], "county_code": county[nearest]})


def place_evidence(events: ibis.Table, devices: ibis.Table, geoip: ibis.Table,
                   towers: ibis.Table, grid: ibis.Table) -> dict[str, ibis.Table]:
    """Per person, the winning county and its vote weights.

    Returns ``home``, ``work`` and ``home_ip`` tables of ``person_id, county_code, top_w,
    all_w`` (``work`` also has ``days``).
    """
    loc = personal(events, devices, ["location"])
    lt = local(loc.ts)
    loc = loc.select(
        "person_id", "network", "cell_id", hour=lt.hour(), dow=lt.day_of_week.index(),
        day=lt.date(), prefix=loc.ip.re_extract(r"^(\d+\.\d+\.\d+)\.\d+$", 1),
        glat=(loc.lat * GRID).floor().cast("int64"), glon=(loc.lon * GRID).floor().cast("int64"))
    ip = geoip.select(p=_.prefix.re_extract(r"^(\d+\.\d+\.\d+)\.", 1), ip_county=_.county_code,
                      fixed=_.connection != "mobile")
    tw = towers.select(cid=_.cell_id, cell_county=_.county_code)
    gr = grid.select(ga=_.glat, go=_.glon, gps_county=_.county_code)
    j = loc.left_join(ip, loc.prefix == ip.p).drop("p")
    j = j.left_join(tw, j.cell_id == tw.cid).drop("cid")
    j = j.left_join(gr, (j.glat == gr.ga) & (j.glon == gr.go)).drop("ga", "go")
    night = (j.hour >= NIGHT[0]) | (j.hour < NIGHT[1])
    # Read by every answer below: computed once (a temporary table on DuckDB, a persisted
    # frame on Spark).
    j = j.mutate(night=night, daytime=(j.dow < 5) & (j.hour >= WORK_HOURS[0])
                 & (j.hour < WORK_HOURS[1])).cache()

    def votes(t: ibis.Table) -> ibis.Table:
        cols = ["person_id", "day", "night", "daytime", "network", "prefix"]
        return (t.filter(t.cell_county.notnull()).select(*cols, county_code=t.cell_county,
                                                         w=ibis.literal(W_CELL))
                .union(t.filter(t.gps_county.notnull()).select(
                    *cols, county_code=t.gps_county, w=ibis.literal(W_GPS)))
                .union(t.filter(t.ip_county.notnull() & t.fixed).select(
                    *cols, county_code=t.ip_county, w=ibis.literal(W_IP)), distinct=False))

    v = votes(j)
    home = top(v.filter(v.night), ["person_id"], "county_code")
    # Home anchors: the network (fixed-line prefix on Wi-Fi), the serving cell and the GPS
    # cell seen most at night. A daytime ping that matches any of them is at home.
    nj = j.filter(j.night).mutate(w=1, gkey=j.glat.cast("string").concat(":", j.glon.cast("string")))
    dj = j.filter(j.daytime).mutate(gkey=j.glat.cast("string").concat(":", j.glon.cast("string")))
    for col, rows in (("prefix", nj.filter((nj.network == "wifi") & nj.prefix.notnull())),
                      ("cell_id", nj.filter(nj.cell_id.notnull())),
                      ("gkey", nj.filter(nj.gkey.notnull()))):
        a = top(rows, ["person_id"], col).select(a_person=_.person_id, **{f"home_{col}": _[col]})
        dj = dj.left_join(a, dj.person_id == a.a_person).drop("a_person")
    at_home = (((dj.network == "wifi") & (dj.prefix == dj.home_prefix)).fill_null(False)
               | (dj.cell_id == dj.home_cell_id).fill_null(False)
               | (dj.gkey == dj.home_gkey).fill_null(False))
    away = votes(dj.filter(~at_home))
    days = away.group_by("person_id").agg(days=away.day.nunique())
    seen = dj.group_by("person_id").agg(weekdays=dj.day.nunique())
    work = top(away, ["person_id"], "county_code").join(days, "person_id").join(seen, "person_id")
    work = work.filter(work.days >= MIN_WORK_DAYS)
    ip_all = j.filter(j.ip_county.notnull()).select("person_id", county_code=j.ip_county,
                                                     w=ibis.literal(1))
    return {"home": home, "work": work, "home_ip": top(ip_all, ["person_id"], "county_code")}


def place_tags(evidence: dict[str, pa.Table], regions: pa.Table) -> pa.Table:
    """Long tag rows from the collected evidence: home and work county, the IP-only answer,
    and the region tags (county, city, province, tier) of the home county.

    Confidence is the share of the vote weight that went to the winner.
    """
    reg = {r["county_code"]: r for r in regions.to_pylist()}
    rows = TagRows()
    add = rows.add

    for name, tag in (("home", "home_county"), ("work", "work_county"),
                      ("home_ip", "home_county_ip")):
        for r in evidence[name].to_pylist():
            if name == "work" and r["days"] < MIN_WORK_SHARE * r["weekdays"]:
                continue  # away now and then (outings), not a workplace
            conf = round(r["top_w"] / r["all_w"], 4)
            add(r["person_id"], tag, r["county_code"], conf)
            if name == "home" and r["county_code"] in reg:
                g = reg[r["county_code"]]
                add(r["person_id"], "county", r["county_code"], conf)
                add(r["person_id"], "city", g["city_code"], conf)
                add(r["person_id"], "province", g["province_code"], conf)
                add(r["person_id"], "city_tier", str(g["city_tier"]), conf)
    return rows.table()

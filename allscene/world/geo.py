"""Places of the world: cities and counties, cell towers, IP prefixes and the geo-IP table.

The region list lives in ``data/cities.csv`` and ``data/counties.csv`` (real Chinese cities and
districts with approximate centroids and 2020 census populations in units of 10,000). Everything
else here (tower positions, IP prefixes, which prefixes a geo-IP vendor places wrongly) is drawn
from the seed, so every process rebuilds the same :class:`Geo`.

The geo-IP table is deliberately imperfect, as real vendor tables are for China:

* home broadband prefixes report the right county only most of the time (else another county of
  the same city);
* office (business broadband) prefixes report the work county (a few are wrong);
* mobile carrier prefixes report the county of the carrier's gateway in the city, whatever county
  the phone is really in.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa

TOWERS_PER_COUNTY = 16
HOME_PREFIXES = 8  # home broadband /24 prefixes per county
OFFICE_PREFIXES = 4  # business broadband /24 prefixes per county
OFFICES_PER_COUNTY = 48  # office buildings (shared Wi-Fi) per county
MOBILE_PREFIXES = 4  # per carrier and city
CARRIERS = ("China Mobile", "China Unicom", "China Telecom")
CARRIER_MNC = ("00", "01", "11")
HOME_GEOIP_RIGHT = 0.72
OFFICE_GEOIP_RIGHT = 0.93
_FIRST_OCTETS = (36, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
                 120, 121, 122, 123, 124, 125, 175, 180, 182, 183, 202, 210, 211, 218, 219, 220,
                 221, 222, 223)


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("allscene.world").joinpath("data", name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@functools.lru_cache(maxsize=4)
def load_json(name: str) -> dict:
    """A JSON data file of ``allscene/world/data``."""
    with resources.files("allscene.world").joinpath("data", name).open(encoding="utf-8") as f:
        return json.load(f)


def md5_hex(texts: list[str]) -> list[str]:
    """MD5 hex digests (one Python call per item: used per device or place, never per event)."""
    return [hashlib.md5(t.encode()).hexdigest() for t in texts]


@dataclass
class Geo:
    """Arrays describing the world's places; index spaces are county and city positions."""

    city_code: np.ndarray  # str (n_city,)
    city_name: np.ndarray
    city_en: np.ndarray
    province: np.ndarray
    province_code: np.ndarray
    city_tier: np.ndarray  # int (n_city,)
    city_elev: np.ndarray
    city_lat: np.ndarray
    city_lon: np.ndarray
    city_hub: np.ndarray  # county index of the airport / main station
    city_gateways: np.ndarray  # (n_city, 3) county index of each carrier's gateway
    city_first: np.ndarray  # first county index of the city
    city_ncounty: np.ndarray
    county_code: np.ndarray  # str (n_county,)
    county_name: np.ndarray
    county_en: np.ndarray
    county_city: np.ndarray  # city index
    county_lat: np.ndarray
    county_lon: np.ndarray
    county_pop: np.ndarray
    tower_lat: np.ndarray  # (n_county, TOWERS_PER_COUNTY)
    tower_lon: np.ndarray
    tower_id: pa.Array  # flat, index county * TOWERS_PER_COUNTY + k
    prefix: pa.Array  # "a.b.c" of every /24 prefix
    home_prefix: np.ndarray  # (n_county, HOME_PREFIXES) index into prefix
    office_prefix: np.ndarray  # (n_county, OFFICE_PREFIXES)
    mobile_prefix: np.ndarray  # (n_city, 3, MOBILE_PREFIXES)
    geoip_county: np.ndarray  # reported county index per prefix
    prefix_kind: np.ndarray  # str per prefix: broadband / business / mobile
    prefix_isp: np.ndarray  # carrier index per prefix
    office_lat: np.ndarray  # (n_county, OFFICES_PER_COUNTY)
    office_lon: np.ndarray
    office_bssid: pa.Array  # flat, county * OFFICES_PER_COUNTY + k
    office_octet: np.ndarray  # (n_county, OFFICES_PER_COUNTY)

    @property
    def n_city(self) -> int:
        return len(self.city_code)

    @property
    def n_county(self) -> int:
        return len(self.county_code)

    def regions_table(self) -> pa.Table:
        """Reference: one row per county with its city and province, tier and centroid."""
        c = self.county_city
        return pa.table({
            "county_code": self.county_code, "county": self.county_name,
            "county_en": self.county_en, "city_code": self.city_code[c],
            "city": self.city_name[c], "city_en": self.city_en[c],
            "province_code": self.province_code[c], "province": self.province[c],
            "city_tier": self.city_tier[c].astype(np.int8), "lat": self.county_lat,
            "lon": self.county_lon, "population_10k": self.county_pop,
            "city_lat": self.city_lat[c], "city_lon": self.city_lon[c],
        })

    def geoip_table(self) -> pa.Table:
        """Reference: what a geo-IP vendor reports per /24 prefix (imperfect by design)."""
        return pa.table({
            "prefix": pc_concat(self.prefix, ".0/24"),
            "county_code": self.county_code[self.geoip_county],
            "city_code": self.city_code[self.county_city[self.geoip_county]],
            "isp": np.asarray(CARRIERS)[self.prefix_isp],
            "connection": self.prefix_kind,
        })

    def cell_towers_table(self) -> pa.Table:
        """Reference: cell id to position and county."""
        n = self.n_county * TOWERS_PER_COUNTY
        county = np.repeat(np.arange(self.n_county), TOWERS_PER_COUNTY)
        return pa.table({
            "cell_id": self.tower_id, "lat": np.round(self.tower_lat.reshape(n), 5),
            "lon": np.round(self.tower_lon.reshape(n), 5), "county_code": self.county_code[county],
        })


def pc_concat(arr: pa.Array, suffix: str) -> pa.Array:
    import pyarrow.compute as pc
    return pc.binary_join_element_wise(arr, suffix, "")


@functools.lru_cache(maxsize=4)
def build_geo(seed: int) -> Geo:
    """The world's places for ``seed`` (cached per process)."""
    rng = np.random.default_rng([seed, 0])
    cities = _read_csv("cities.csv")
    counties = _read_csv("counties.csv")
    city_index = {c["city_code"]: i for i, c in enumerate(cities)}
    counties.sort(key=lambda r: city_index[r["city_code"]])  # stable: keeps file order in a city
    county_index = {c["county_code"]: i for i, c in enumerate(counties)}
    county_city = np.array([city_index[c["city_code"]] for c in counties])
    lat = np.array([float(c["lat"]) for c in counties])
    lon = np.array([float(c["lon"]) for c in counties])
    pop = np.array([float(c["pop_10k"]) for c in counties])
    n_city, n_county = len(cities), len(counties)
    city_first = np.searchsorted(county_city, np.arange(n_city))
    city_ncounty = np.bincount(county_city, minlength=n_city)
    city_lat = np.bincount(county_city, lat * pop) / np.bincount(county_city, pop)
    city_lon = np.bincount(county_city, lon * pop) / np.bincount(county_city, pop)
    gateways = np.zeros((n_city, 3), dtype=np.int64)
    for i, c in enumerate(cities):
        g = [county_index[x] for x in c["gateway_county_codes"].split("|")]
        gateways[i] = [g[k % len(g)] for k in range(3)]

    # Cell towers: scattered around each county centroid, denser (tighter) in the centre.
    spread = 0.025 + 0.02 * rng.random((n_county, 1))
    t_lat = lat[:, None] + rng.normal(0, 1, (n_county, TOWERS_PER_COUNTY)) * spread
    t_lon = lon[:, None] + rng.normal(0, 1, (n_county, TOWERS_PER_COUNTY)) * spread * 1.2
    lac = np.repeat(1000 + np.arange(n_county) * 7, TOWERS_PER_COUNTY)
    ci = rng.choice(np.arange(10_000, 65_000), n_county * TOWERS_PER_COUNTY, replace=False)
    tower_id = pa.array([f"460-00-{a}-{b}" for a, b in zip(lac.tolist(), ci.tolist(), strict=True)])

    # IP prefixes: unique random /24s out of plausible Chinese first octets.
    n_home, n_office = n_county * HOME_PREFIXES, n_county * OFFICE_PREFIXES
    n_mobile = n_city * 3 * MOBILE_PREFIXES
    n_prefix = n_home + n_office + n_mobile
    space = len(_FIRST_OCTETS) * 256 * 256
    pick = rng.choice(space, n_prefix, replace=False)
    a = np.asarray(_FIRST_OCTETS)[pick // 65536]
    prefix = pa.array([f"{x}.{(p // 256) % 256}.{p % 256}"
                       for x, p in zip(a.tolist(), pick.tolist(), strict=True)])
    home_prefix = np.arange(n_home).reshape(n_county, HOME_PREFIXES)
    office_prefix = n_home + np.arange(n_office).reshape(n_county, OFFICE_PREFIXES)
    mobile_prefix = n_home + n_office + np.arange(n_mobile).reshape(n_city, 3, MOBILE_PREFIXES)

    def other_county_same_city(true_county: np.ndarray) -> np.ndarray:
        c = county_city[true_county]
        off = rng.integers(1, np.maximum(city_ncounty[c], 2), len(true_county))
        return city_first[c] + (true_county - city_first[c] + off) % city_ncounty[c]

    home_true = np.repeat(np.arange(n_county), HOME_PREFIXES)
    home_rep = np.where(rng.random(n_home) < HOME_GEOIP_RIGHT, home_true,
                        other_county_same_city(home_true))
    office_true = np.repeat(np.arange(n_county), OFFICE_PREFIXES)
    office_rep = np.where(rng.random(n_office) < OFFICE_GEOIP_RIGHT, office_true,
                          other_county_same_city(office_true))
    mobile_rep = np.repeat(gateways, MOBILE_PREFIXES, axis=1).reshape(-1)
    geoip_county = np.concatenate([home_rep, office_rep, mobile_rep])
    prefix_kind = np.array(["broadband"] * n_home + ["business"] * n_office + ["mobile"] * n_mobile)
    prefix_isp = np.concatenate([
        rng.choice(3, n_home, p=[0.35, 0.3, 0.35]), rng.choice(3, n_office, p=[0.2, 0.4, 0.4]),
        np.tile(np.repeat(np.arange(3), MOBILE_PREFIXES), n_city)])

    o_lat = lat[:, None] + rng.normal(0, 0.012, (n_county, OFFICES_PER_COUNTY))
    o_lon = lon[:, None] + rng.normal(0, 0.015, (n_county, OFFICES_PER_COUNTY))
    office_bssid = pa.array(md5_hex([f"{seed}:office-ap:{i}"
                                     for i in range(n_county * OFFICES_PER_COUNTY)]))
    office_octet = rng.integers(2, 254, (n_county, OFFICES_PER_COUNTY))

    col = lambda rows, k: np.array([r[k] for r in rows])  # noqa: E731
    return Geo(
        city_code=col(cities, "city_code"), city_name=col(cities, "city"),
        city_en=col(cities, "city_en"), province=col(cities, "province"),
        province_code=col(cities, "province_code"),
        city_tier=col(cities, "tier").astype(np.int64),
        city_elev=col(cities, "elev_m").astype(float), city_lat=city_lat, city_lon=city_lon,
        city_hub=np.array([county_index[c["hub_county_code"]] for c in cities]),
        city_gateways=gateways, city_first=city_first, city_ncounty=city_ncounty,
        county_code=col(counties, "county_code"), county_name=col(counties, "county"),
        county_en=col(counties, "county_en"), county_city=county_city, county_lat=lat,
        county_lon=lon, county_pop=pop, tower_lat=t_lat, tower_lon=t_lon, tower_id=tower_id,
        prefix=prefix, home_prefix=home_prefix, office_prefix=office_prefix,
        mobile_prefix=mobile_prefix, geoip_county=geoip_county, prefix_kind=prefix_kind,
        prefix_isp=prefix_isp, office_lat=o_lat, office_lon=o_lon, office_bssid=office_bssid,
        office_octet=office_octet,
    )


def nearest_tower(geo: Geo, county: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Flat tower index of the tower of ``county`` nearest to each point (vectorized)."""
    d = (geo.tower_lat[county] - lat[:, None]) ** 2 + (geo.tower_lon[county] - lon[:, None]) ** 2
    return county * TOWERS_PER_COUNTY + np.argmin(d, axis=1)

"""People, households and devices of one batch, with every hidden trait.

A batch is generated from ``(seed, batch)`` alone, so any process can rebuild it. Households
never straddle batches. All columns are numpy arrays of length ``n`` (people), ``n_hh``
(households) or per device; :func:`truth_tables` turns them into the truth set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.world.geo import OFFICES_PER_COUNTY, Geo, load_json, md5_hex

INTERESTS: tuple[str, ...] = tuple(load_json("vocab.json")["interests"])
INTENTS: tuple[str, ...] = tuple(load_json("vocab.json")["intents"])
EDUCATION = ("junior_high_or_below", "high_school", "associate", "bachelor", "master_plus")
COMMUTE = ("none", "taxi", "transit", "drive")
EXERCISE = ("none", "light", "runner")
TRIP_KIND = ("none", "business", "holiday")
PLACEMENTS = ("splash", "feed", "focus_image", "video_preroll", "tv_boot", "lock_screen")
TIER_WEIGHT = {1: 0.6, 2: 0.9, 3: 1.6, 4: 2.2, 5: 2.6}  # lower tiers stand for many unlisted cities
I = {k: i for i, k in enumerate(INTERESTS)}  # noqa: E741
CAR_BODIES = ("compact", "suv", "sedan", "nev", "mpv")


def _cars() -> dict[str, np.ndarray]:
    rows = load_json("vocab.json")["cars"]["models"]
    bands = load_json("vocab.json")["price_bands"]
    return {
        "make": np.array([r[0] for r in rows]), "model": np.array([r[2] for r in rows]),
        "body": np.array([CAR_BODIES.index(r[4]) for r in rows]),
        "band": np.array([bands.index(r[5]) for r in rows]),
        "price_k": np.array([r[6] for r in rows], dtype=float),
    }


CARS = _cars()


@dataclass
class Population:
    """One batch of the world. Person arrays first, then household arrays (``hh_*``)."""

    seed: int
    batch: int
    n: int
    person_id: pa.Array
    hh: np.ndarray  # household index (within batch) of each person
    rank: np.ndarray  # member rank in the household (0 = head)
    traits: dict[str, np.ndarray]
    interest: np.ndarray  # (n, len(INTERESTS)) affinity, 0 = no interest
    intent: np.ndarray  # (n, len(INTENTS)) strength, 0 = no intent
    hh_first: np.ndarray
    hh_id: pa.Array
    hh_traits: dict[str, np.ndarray]
    devices: dict[str, pa.Array] = field(default_factory=dict)  # per kind: device_id per owner
    declared: dict[str, np.ndarray] = field(default_factory=dict)  # see declarations()


def _luhn_imei(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random 15-digit IMEIs with a valid Luhn check digit."""
    d = np.zeros((n, 14), dtype=np.int64)
    d[:, 0], d[:, 1] = 8, 6
    d[:, 2:] = rng.integers(0, 10, (n, 12))
    dbl = d.copy()
    dbl[:, 1::2] *= 2
    dbl = np.where(dbl > 9, dbl - 9, dbl)
    check = (10 - dbl.sum(axis=1) % 10) % 10
    digits = np.concatenate([d, check[:, None]], axis=1).astype(np.uint8) + ord("0")
    return digits.view("S15").ravel().astype(str)


def _ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    return pc.binary_join_element_wise(
        prefix, pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0"), "")


def build_population(geo: Geo, *, seed: int, batch: int, n: int, days: int,
                     day_rest: np.ndarray) -> Population:
    """People, households and devices of ``batch`` (``n`` people); deterministic."""
    rng = np.random.default_rng([seed, 1, batch])
    # --- households: adults simulated, kids only as a trait --------------------------------
    adults = rng.choice([1, 2, 3, 4], n, p=[0.27, 0.52, 0.15, 0.06])
    ends = np.cumsum(adults)
    n_hh = int(np.searchsorted(ends, n) + 1)
    adults = adults[:n_hh]
    adults[-1] -= ends[n_hh - 1] - n
    hh_first = np.concatenate([[0], np.cumsum(adults)[:-1]])
    hh = np.repeat(np.arange(n_hh), adults)
    rank = np.arange(n) - hh_first[hh]

    tierw = np.array([TIER_WEIGHT[int(t)] for t in geo.city_tier])[geo.county_city]
    w = geo.county_pop * tierw
    hh_county = rng.choice(geo.n_county, n_hh, p=w / w.sum())
    hh_city = geo.county_city[hh_county]
    tier_hh = geo.city_tier[hh_city]
    hh_lat = geo.county_lat[hh_county] + rng.normal(0, 0.018, n_hh)
    hh_lon = geo.county_lon[hh_county] + rng.normal(0, 0.022, n_hh)

    # --- demographics ----------------------------------------------------------------------
    head_age = np.clip(rng.gamma(7.0, 5.2, n_hh) + 8, 18, 75)
    age = head_age[hh].copy()
    r1 = rank == 1
    age[r1] += rng.normal(0, 3, r1.sum())
    r2 = rank >= 2
    older = head_age[hh][r2] < 42
    age[r2] = np.where(older, head_age[hh][r2] + rng.uniform(24, 32, r2.sum()),
                       head_age[hh][r2] - rng.uniform(24, 32, r2.sum()))
    age = np.clip(np.round(age), 18, 80).astype(np.int64)
    gender_head = rng.random(n_hh) < 0.5
    gender = np.where(rank == 0, gender_head[hh], rng.random(n) < 0.5)
    gender = np.where(r1 & (rng.random(n) < 0.95), ~gender_head[hh], gender)
    gender_s = np.where(gender, "male", "female")
    kid_p = np.where(adults >= 2, np.where((head_age > 25) & (head_age < 48), 0.62, 0.12), 0.03)
    hh_kids = np.where(rng.random(n_hh) < kid_p, rng.choice([1, 2], n_hh, p=[0.7, 0.3]), 0)
    hh_kids = np.minimum(hh_kids, 5 - adults)
    kids = hh_kids[hh] > 0
    tier = tier_hh[hh]

    z = rng.normal(0, 1, n) + 0.025 * (45 - age) + 0.3 * (3 - tier)
    edu = np.digitize(z, [-1.0, -0.1, 0.5, 1.6])
    employed = np.where(age < 23, rng.random(n) < 0.45,
                        np.where(age < 60, rng.random(n) < 0.88, rng.random(n) < 0.12))
    age_eff = -0.0012 * (age - 42) ** 2
    income = np.exp(np.log(4200) + 0.32 * edu + 0.18 * (3 - tier) + age_eff
                    + rng.normal(0, 0.45, n))
    income = np.where(employed, income, np.where(age >= 60, rng.lognormal(np.log(3200), 0.35, n),
                                                 rng.lognormal(np.log(1800), 0.4, n)))
    income = np.clip(np.round(income, -2), 800, 200_000)

    # --- places ----------------------------------------------------------------------------
    home_county = hh_county[hh]
    city = hh_city[hh]
    cf, cn = geo.city_first[city], geo.city_ncounty[city]
    same = rng.random(n) < 0.5
    # Other county of the city, weighted by population (work clusters in big districts).
    cum = np.cumsum(geo.county_pop)
    lo = np.where(cf > 0, cum[cf - 1], 0.0)
    hi = cum[cf + cn - 1]
    pick = np.searchsorted(cum, lo + rng.random(n) * (hi - lo), side="right")
    pick = np.where(pick == home_county, cf + (pick - cf + 1) % cn, pick)
    work_county = np.where(employed, np.where(same, home_county, pick), -1)
    office = np.where(employed, rng.integers(0, OFFICES_PER_COUNTY, n), -1)
    wc, oc = np.maximum(work_county, 0), np.maximum(office, 0)
    work_lat = np.where(employed, geo.office_lat[wc, oc], np.nan)
    work_lon = np.where(employed, geo.office_lon[wc, oc], np.nan)

    # --- car, commute, routine -------------------------------------------------------------
    lg = np.log(income / 6000)
    car_p = 1 / (1 + np.exp(-(-1.3 + 1.1 * lg - 0.35 * (tier == 1) + 0.4 * ((age > 25) & (age < 58)))))
    owns_car = rng.random(n) < car_p
    target = np.clip(income * 12 * 1.25 / 1000, 35, 400)
    wcar = np.exp(-(np.log(CARS["price_k"][None, :]) - np.log(target[:, None])) ** 2 / 0.15)
    car_model = _choice_rows(rng, wcar)
    car_year = np.clip(2026 - np.round(rng.gamma(1.6, 2.8, n)), 2008, 2026).astype(np.int64)
    u = rng.random(n)
    taxi_p = np.clip(0.08 + 0.08 * lg + 0.05 * (tier == 1), 0.03, 0.45)
    commute = np.where(~employed, 0, np.where(
        owns_car, np.where(u < 0.68, 3, np.where(u < 0.78, 1, 2)),
        np.where(u < taxi_p, 1, 2)))
    leave = rng.choice([7, 8, 9], n, p=[0.35, 0.5, 0.15])
    end = rng.choice([17, 18, 19], n, p=[0.3, 0.5, 0.2])
    late_p = np.clip(rng.beta(1.3, 5.0, n) * np.where(tier == 1, 1.4, 1.0), 0, 0.75)
    late_p = np.where(employed, late_p, 0.0)
    wake = np.where(employed, leave - rng.choice([1, 2], n, p=[0.7, 0.3]),
                    rng.choice([6, 7, 8, 9], n, p=[0.25, 0.35, 0.25, 0.15]))
    sleep = rng.choice([22, 23, 24], n, p=[0.3, 0.45, 0.25])
    ex_u = rng.random(n)
    runner_p = np.where(age < 45, 0.16, 0.07)
    exercise = np.where(ex_u < runner_p, 2, np.where(ex_u < runner_p + 0.32, 1, 0))
    run_days = np.where(exercise == 2, rng.integers(2, 6, n), 0)
    run_evening = rng.random(n) < 0.6
    pace = np.where(exercise == 2, np.round(rng.uniform(4.5, 7.5, n), 1), np.nan)
    run_min = np.where(exercise == 2, rng.integers(30, 61, n), 0)
    has_band = rng.random(n) < np.array([0.15, 0.42, 0.78])[exercise]

    # --- interests and intents -------------------------------------------------------------
    male = gender
    young = age < 32
    p = np.zeros((n, len(INTERESTS)))
    p[:, I["cars"]] = np.where(male, 0.3, 0.1)
    p[:, I["sports"]] = np.where(male, 0.38, 0.14)
    p[:, I["travel"]] = 0.3 + 0.1 * (income > 10_000)
    p[:, I["food"]] = np.where(male, 0.35, 0.5)
    p[:, I["comics"]] = np.where(young, 0.38, 0.08)
    p[:, I["music"]] = np.where(young, 0.55, 0.3)
    p[:, I["news"]] = np.clip(0.15 + 0.008 * (age - 18), 0, 0.7)
    p[:, I["games"]] = np.where(age < 35, np.where(male, 0.5, 0.28), 0.08)
    p[:, I["fitness"]] = np.array([0.08, 0.4, 0.92])[exercise]
    p[:, I["kids"]] = np.where(kids, 0.85, 0.03)
    p[:, I["finance"]] = np.clip(0.08 + 0.1 * lg, 0.03, 0.5)
    p[:, I["beauty"]] = np.where(male, 0.04, 0.48)
    p[:, I["tech"]] = np.where(male, 0.32, 0.14)
    interest = (rng.random(p.shape) < p) * (0.4 + rng.gamma(2.0, 0.5, p.shape))

    intent = np.zeros((n, len(INTENTS)))
    chev = (~owns_car) & (age >= 22) & (age <= 39) & (income >= 6000) & (income < 20_000)
    car_int_p = np.where(chev, 0.14, np.where(owns_car, 0.03, 0.05))
    has_car_int = rng.random(n) < car_int_p
    body_p = np.where(owns_car[:, None], [[0.05, 0.35, 0.25, 0.25, 0.10]],
                      [[0.45, 0.28, 0.07, 0.16, 0.04]])
    body = _choice_rows(rng, body_p)
    strength = rng.uniform(0.5, 1.5, n)
    intent[np.arange(n), body] = np.where(has_car_int, strength, 0.0)
    budget_k = income * 12 * np.where(owns_car, 1.6, 1.2) / 1000
    car_band = np.digitize(budget_k, [50, 80, 100, 150, 250])
    car_band = np.where(has_car_int & (body == 0), np.clip(car_band, 1, 3), car_band)
    interest[:, I["cars"]] = np.where(has_car_int, np.maximum(interest[:, I["cars"]], 1.0),
                                      interest[:, I["cars"]])
    phone_int = rng.random(n) < 0.08
    intent[:, INTENTS.index("phone_upgrade")] = np.where(phone_int, rng.uniform(0.5, 1.5, n), 0)
    phone_band = np.digitize(income, [4000, 8000, 15_000])

    # --- trips (holiday per household, business per person) --------------------------------
    rest = np.asarray(day_rest, dtype=bool)
    rest_days = np.flatnonzero(rest)
    work_days = np.flatnonzero(~rest)
    hol = (rng.random(n_hh) < 0.06 * days / 14 + 0.02 * rest.sum()) & (rest_days.size > 0)
    hol_start = rest_days[rng.integers(0, max(rest_days.size, 1), n_hh)] if rest_days.size \
        else np.zeros(n_hh, dtype=np.int64)
    hol_len = rng.integers(2, 6, n_hh)
    city_w = np.array([3.0 if t <= 2 else 1.0 for t in geo.city_tier])
    for name in ("Guilin", "Kunming", "Chengdu", "Xi'an", "Hangzhou", "Baoshan"):
        city_w[list(geo.city_en).index(name)] = 6.0
    hol_city = _other_city(rng, hh_city, city_w)
    bus_p = np.where(employed, np.where(income > 9000, 0.14, 0.05), 0.0) * days / 14
    bus = (rng.random(n) < bus_p) & (work_days.size > 0)
    bus_start = work_days[rng.integers(0, max(work_days.size, 1), n)] if work_days.size \
        else np.zeros(n, dtype=np.int64)
    bus_len = rng.integers(2, 5, n)
    bus_city = _other_city(rng, city, np.array([4.0 if t <= 2 else 1.0 for t in geo.city_tier]))
    on_hol = hol[hh]
    trip_kind = np.where(on_hol, 2, np.where(bus, 1, 0))
    trip_start = np.where(on_hol, hol_start[hh], np.where(bus, bus_start, -1))
    trip_len = np.where(on_hol, hol_len[hh], np.where(bus, bus_len, 0))
    trip_city = np.where(on_hol, hol_city[hh], np.where(bus, bus_city, -1))
    tcity = np.maximum(trip_city, 0)
    trip_county = np.where(trip_kind > 0, geo.city_first[tcity]
                           + rng.integers(0, 1 << 30, n) % geo.city_ncounty[tcity], -1)
    travel_int = (rng.random(n) < 0.05) | ((trip_kind == 2) & (trip_start >= 2)
                                           & (rng.random(n) < 0.7))
    intent[:, INTENTS.index("travel_booking")] = np.where(travel_int, rng.uniform(0.5, 1.5, n), 0)

    # --- habits, consent -------------------------------------------------------------------
    prime = rng.random(n) < np.clip(0.35 + 0.008 * (age - 30), 0.2, 0.8)
    sports_fan = (interest[:, I["sports"]] > 0) & (rng.random(n) < 0.6)
    uses_home_wifi = rng.random(n) < 0.93
    office_wifi = employed & (rng.random(n) < 0.7)
    carrier = rng.choice(3, n, p=[0.6, 0.2, 0.2])
    opt_out = rng.random(n) < 0.035
    opt_out_day = np.where(opt_out, np.where(rng.random(n) < 0.7, 0, rng.integers(0, days, n)), -1)
    opt_in = opt_out & (rng.random(n) < 0.12) & (opt_out_day < days - 1)
    opt_in_day = np.where(opt_in, opt_out_day + 1 + rng.integers(0, 1 << 30, n)
                          % np.maximum(days - 1 - opt_out_day, 1), -1)
    app_rate = rng.lognormal(np.log(0.55), 0.4, n) * np.where(age > 55, 0.6, 1.0)
    search_rate = rng.lognormal(np.log(0.12), 0.5, n)
    content_rate = rng.lognormal(np.log(0.22), 0.5, n)

    hh_any_adult_old = np.zeros(n_hh, dtype=bool)
    np.logical_or.at(hh_any_adult_old, hh, age >= 55)
    hh_income = np.bincount(hh, income, minlength=n_hh)
    hh_tv = rng.random(n_hh) < 0.62 + 0.15 * (hh_kids > 0)
    hh_speaker = rng.random(n_hh) < 0.33 + 0.1 * (hh_kids > 0)
    hh_router = rng.random(n_hh) < 0.45
    north = geo.county_lat[hh_county] > 33
    hh_purifier = rng.random(n_hh) < 0.18 + 0.15 * north + 0.1 * (tier_hh == 1)
    hh_vacuum = rng.random(n_hh) < np.clip(0.1 + 0.08 * np.log(hh_income / 8000), 0.03, 0.5)

    gid = batch * 1_000_000 + np.arange(n)  # unique while batches hold < 1M people
    person_id = _ids(f"p{batch:05d}", np.arange(n), 6)
    hh_id = _ids(f"h{batch:05d}", np.arange(n_hh), 6)
    traits = dict(
        gender=gender_s, age=age, education=np.array(EDUCATION)[edu], edu_level=edu,
        income=income, employed=employed, city=city, home_county=home_county,
        home_lat=hh_lat[hh], home_lon=hh_lon[hh], work_county=work_county, office=office,
        work_lat=work_lat, work_lon=work_lon, owns_car=owns_car, car_model=car_model,
        car_year=car_year, commute=commute, leave=leave, end=end, late_p=late_p, wake=wake,
        sleep=sleep, exercise=exercise, run_days=run_days, run_evening=run_evening, pace=pace,
        run_min=run_min, has_band=has_band, car_band=car_band, phone_band=phone_band,
        trip_kind=trip_kind, trip_start=trip_start, trip_len=trip_len, trip_city=trip_city,
        trip_county=trip_county, prime=prime, sports_fan=sports_fan, kids=kids,
        uses_home_wifi=uses_home_wifi, office_wifi=office_wifi, carrier=carrier,
        opt_out=opt_out, opt_out_day=opt_out_day, opt_in_day=opt_in_day, app_rate=app_rate,
        search_rate=search_rate, content_rate=content_rate, gid=gid,
    )
    hh_traits = dict(
        county=hh_county, city=hh_city, lat=hh_lat, lon=hh_lon, adults=adults, kids=hh_kids,
        tv=hh_tv, speaker=hh_speaker, router=hh_router, purifier=hh_purifier,
        vacuum=hh_vacuum, income=hh_income, old=hh_any_adult_old,
        home_prefix=geo.home_prefix[hh_county, rng.integers(0, geo.home_prefix.shape[1], n_hh)],
    )
    pop = Population(seed=seed, batch=batch, n=n, person_id=person_id, hh=hh, rank=rank, traits=traits,
                     interest=interest, intent=intent, hh_first=hh_first, hh_id=hh_id,
                     hh_traits=hh_traits)
    _add_devices(pop, rng, seed)
    pop.declared = declarations(pop, seed, days)
    return pop


def declarations(pop: Population, seed: int, days: int) -> dict[str, np.ndarray]:
    """Per person: on which day each kind of statement is made (-1 never) and what it says.

    * ``account``: on signing in the first time, 62% fill in their gender and 50% their birth
      year; 2% of stated genders and 5% of stated birth years are not true.
    * ``real_name``: a real-name check (wallet, finance), 20% of people and 55% of those
      with a finance interest, on a random day: gender and birth year from the ID card.
    * ``survey``: a member survey, 18% of people, on a random day: education (8% not true)
      and monthly income (stated roughly, rounded to 500 CNY).
    Empty strings, -1 and NaN stand for "not stated".
    """
    t, n = pop.traits, pop.n
    rng = np.random.default_rng([seed, 5, pop.batch])
    born = 2026 - t["age"]
    male = t["gender"] == "male"
    out: dict[str, np.ndarray] = {}
    # account profile
    says_g = rng.random(n) < 0.62
    g = np.where(rng.random(n) < 0.02, ~male, male)
    out["account_gender"] = np.where(says_g, np.where(g, "male", "female"), "")
    says_b = rng.random(n) < 0.50
    fake = rng.random(n) < 0.05
    out["account_birth_year"] = np.where(says_b, np.where(fake, rng.integers(1966, 2008, n), born),
                                         -1)
    out["account_education"] = np.full(n, "")
    out["account_income"] = np.full(n, np.nan)
    out["account_day"] = np.where(says_g | says_b, 0, -1)
    # real-name check
    fin = pop.interest[:, INTERESTS.index("finance")] > 0
    rn = rng.random(n) < np.where(fin, 0.55, 0.2)
    out["real_name_day"] = np.where(rn, rng.integers(0, days, n), -1)
    out["real_name_gender"] = np.where(rn, t["gender"], "")
    out["real_name_birth_year"] = np.where(rn, born, -1)
    out["real_name_education"] = np.full(n, "")
    out["real_name_income"] = np.full(n, np.nan)
    # member survey
    sv = rng.random(n) < 0.18
    out["survey_day"] = np.where(sv, rng.integers(0, days, n), -1)
    lvl = np.clip(t["edu_level"] + np.where(rng.random(n) < 0.08, rng.choice([-1, 1], n), 0),
                  0, len(EDUCATION) - 1)
    out["survey_education"] = np.where(sv, np.array(EDUCATION)[lvl], "")
    stated = np.round(t["income"] * rng.lognormal(0, 0.15, n) / 500) * 500
    out["survey_income"] = np.where(sv, np.maximum(stated, 500), np.nan)
    out["survey_gender"] = np.full(n, "")
    out["survey_birth_year"] = np.full(n, -1)
    return out


def _choice_rows(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    """One column index per row, with probability proportional to the row's weights."""
    c = np.cumsum(w, axis=1)
    return (c < rng.random(len(w))[:, None] * c[:, -1:]).sum(axis=1)


def _other_city(rng: np.random.Generator, city: np.ndarray, w: np.ndarray) -> np.ndarray:
    cum = np.cumsum(w)
    pick = np.searchsorted(cum, rng.random(len(city)) * cum[-1], side="right")
    return np.where(pick == city, (pick + 1 + rng.integers(0, len(w) - 1, len(city))) % len(w),
                    pick)


def _add_devices(pop: Population, rng: np.random.Generator, seed: int) -> None:
    """Raw serials, hashed device ids, IMEI/OAID and accounts (one hash call per device)."""
    t, ht, n = pop.traits, pop.hh_traits, pop.n
    b = pop.batch
    pid = [f"{seed}:{b}:{i}" for i in range(n)]
    hid = [f"{seed}:{b}:{i}" for i in range(len(pop.hh_first))]
    imei = _luhn_imei(rng, n)
    oaid = np.array([f"{x:016x}" for x in rng.integers(0, 1 << 62, n).tolist()])
    t["imei"], t["oaid"] = imei, oaid
    t["phone_serial"] = np.array([f"PH{b:05d}{i:06d}{s[-4:]}" for i, s in enumerate(imei)])
    pop.devices["phone"] = pa.array(md5_hex([f"sn:{s}" for s in t["phone_serial"]]))
    pop.devices["account"] = pa.array(md5_hex([f"mi-account:{x}" for x in pid]))
    pop.devices["imei_md5"] = pa.array(md5_hex(list(imei)))
    pop.devices["oaid_md5"] = pa.array(md5_hex(list(oaid)))
    import hashlib
    pop.devices["imei_sha256"] = pa.array([hashlib.sha256(x.encode()).hexdigest() for x in imei])
    pop.devices["oaid_sha256"] = pa.array([hashlib.sha256(x.encode()).hexdigest() for x in oaid])
    for kind in ("band", "car"):
        pop.devices[kind] = pa.array(md5_hex([f"sn:{kind}:{x}" for x in pid]))
    for kind in ("tv", "speaker", "router", "air_purifier", "robot_vacuum"):
        pop.devices[kind] = pa.array(md5_hex([f"sn:{kind}:{x}" for x in hid]))
    pop.devices["bssid"] = pa.array(md5_hex([f"home-ap:{x}" for x in hid]))
    pop.devices["ssid_hash"] = pa.array([h[:16] for h in md5_hex([f"ssid:{x}" for x in hid])])
    del ht


def truth_tables(pop: Population, geo: Geo) -> dict[str, pa.Table]:
    """people, households, devices and ad_response rows of the batch."""
    t, ht = pop.traits, pop.hh_traits
    bands = np.array(load_json("vocab.json")["price_bands"])
    pbands = np.array(load_json("vocab.json")["phone_price_bands"])
    wc = np.maximum(t["work_county"], 0)
    emp = t["employed"]
    tc = np.maximum(t["trip_city"], 0)
    tk = t["trip_kind"] > 0
    car = t["owns_car"]
    people = {
        "person_id": pop.person_id, "household_id": pop.hh_id.take(pa.array(pop.hh)),
        "gender": t["gender"], "age": t["age"], "education": t["education"],
        "income_monthly_cny": t["income"], "employed": emp,
        "province_code": geo.province_code[t["city"]], "province": geo.province[t["city"]],
        "city_code": geo.city_code[t["city"]], "city": geo.city_name[t["city"]],
        "city_tier": geo.city_tier[t["city"]], "home_county_code": geo.county_code[t["home_county"]],
        "home_county": geo.county_name[t["home_county"]],
        "home_lat": t["home_lat"], "home_lon": t["home_lon"],
        "work_county_code": pa.array(np.where(emp, geo.county_code[wc], ""), mask=~emp),
        "work_lat": pa.array(t["work_lat"], mask=~emp), "work_lon": pa.array(t["work_lon"], mask=~emp),
        "office_id": pa.array(wc * OFFICES_PER_COUNTY + np.maximum(t["office"], 0), mask=~emp),
        "cross_district_commuter": emp & (t["work_county"] != t["home_county"]),
        "commute_mode": np.array(COMMUTE)[t["commute"]], "leave_hour": t["leave"],
        "end_hour": t["end"], "work_late_prob": t["late_p"], "wake_hour": t["wake"],
        "sleep_hour": t["sleep"], "owns_car": car,
        "car_make": pa.array(CARS["make"][t["car_model"]], mask=~car),
        "car_model": pa.array(CARS["model"][t["car_model"]], mask=~car),
        "car_year": pa.array(t["car_year"], mask=~car),
        "exercise": np.array(EXERCISE)[t["exercise"]], "run_days_per_week": t["run_days"],
        "run_pace_min_per_km": pa.array(t["pace"], mask=np.isnan(t["pace"])), "run_minutes": t["run_min"],
        "run_time": np.where(t["exercise"] == 2, np.where(t["run_evening"], "evening", "morning"), ""),
        "has_band": t["has_band"], "uses_home_wifi": t["uses_home_wifi"],
        "uses_office_wifi": t["office_wifi"], "tv_prime_time": t["prime"], "tv_sports_fan": t["sports_fan"],
        "has_kids": t["kids"], "opt_out": t["opt_out"], "opt_out_day": t["opt_out_day"],
        "opt_in_day": t["opt_in_day"], "carrier": np.array(["China Mobile", "China Unicom",
                                                            "China Telecom"])[t["carrier"]],
        "trip_kind": np.array(TRIP_KIND)[t["trip_kind"]], "trip_start_day": t["trip_start"],
        "trip_days": t["trip_len"],
        "trip_city_code": pa.array(np.where(tk, geo.city_code[tc], ""), mask=~tk),
        "car_intent_first_car": (t["car_band"] >= 0) & ~car
        & (pop.intent[:, :5].max(axis=1) > 0),
        "car_intent_price_band": pa.array(bands[t["car_band"]],
                                          mask=~(pop.intent[:, :5].max(axis=1) > 0)),
        "phone_intent_price_band": pa.array(pbands[t["phone_band"]],
                                            mask=~(pop.intent[:, 5] > 0)),
    }
    for k, name in enumerate(INTERESTS):
        people[f"interest_{name}"] = np.round(pop.interest[:, k], 3)
    for k, name in enumerate(INTENTS):
        people[f"intent_{name}"] = np.round(pop.intent[:, k], 3)
    households = {
        "household_id": pop.hh_id, "county_code": geo.county_code[ht["county"]],
        "city_code": geo.city_code[ht["city"]], "home_lat": ht["lat"], "home_lon": ht["lon"],
        "adults": ht["adults"], "kids": ht["kids"], "home_bssid": pop.devices["bssid"],
        "home_ip_prefix": geo.prefix.take(pa.array(ht["home_prefix"])),
        "has_tv": ht["tv"], "has_speaker": ht["speaker"], "has_router": ht["router"],
        "has_air_purifier": ht["purifier"], "has_robot_vacuum": ht["vacuum"],
    }
    return {"people": pa.table(people), "households": pa.table(households),
            "devices": _device_table(pop), "ad_response": ad_response_table(pop)}


def _device_table(pop: Population) -> pa.Table:
    t, ht, d = pop.traits, pop.hh_traits, pop.devices
    n, n_hh = pop.n, len(pop.hh_first)
    hh_ids = pop.hh_id.take(pa.array(pop.hh))
    parts = []
    null_s = pa.nulls(n, pa.string())
    parts.append(pa.table({
        "device_id": d["phone"], "device_type": pa.array(["phone"] * n), "person_id": pop.person_id,
        "household_id": hh_ids, "raw_serial": pa.array(t["phone_serial"]),
        "imei": pa.array(t["imei"]), "oaid": pa.array(t["oaid"]), "account_id": d["account"],
        "make": pa.array(["Xiaomi"] * n), "model": null_s, "year": pa.nulls(n, pa.int64())}))
    for kind, mask in (("band", t["has_band"]), ("car", t["owns_car"])):
        idx = pa.array(np.flatnonzero(mask))
        m = len(idx)
        parts.append(pa.table({
            "device_id": d[kind].take(idx), "device_type": pa.array([kind] * m),
            "person_id": pop.person_id.take(idx), "household_id": hh_ids.take(idx),
            "raw_serial": pa.array([f"{kind}:{x}" for x in np.flatnonzero(mask)]),
            "imei": pa.nulls(m, pa.string()), "oaid": pa.nulls(m, pa.string()),
            "account_id": d["account"].take(idx),
            "make": pa.array(CARS["make"][t["car_model"]][mask]) if kind == "car"
            else pa.array(["Xiaomi"] * m),
            "model": pa.array(CARS["model"][t["car_model"]][mask]) if kind == "car"
            else pa.array(["Smart Band 9"] * m),
            "year": pa.array(t["car_year"][mask]) if kind == "car" else pa.nulls(m, pa.int64())}))
    head = pa.array(pop.hh_first)
    for kind, key in (("tv", "tv"), ("speaker", "speaker"), ("router", "router"),
                      ("air_purifier", "purifier"), ("robot_vacuum", "vacuum")):
        sel = np.flatnonzero(ht[key])
        idx = pa.array(sel)
        m = len(sel)
        parts.append(pa.table({
            "device_id": d[kind].take(idx), "device_type": pa.array([kind] * m),
            "person_id": pop.person_id.take(head.take(idx)), "household_id": pop.hh_id.take(idx),
            "raw_serial": pa.array([f"{kind}:{x}" for x in sel]),
            "imei": pa.nulls(m, pa.string()), "oaid": pa.nulls(m, pa.string()),
            "account_id": d["account"].take(head.take(idx)),
            "make": pa.array(["Xiaomi"] * m), "model": pa.nulls(m, pa.string()),
            "year": pa.nulls(m, pa.int64())}))
    del n_hh
    return pa.concat_tables(parts)


def ad_response_table(pop: Population) -> pa.Table:
    """Each person's hidden response to ads, for a later ad simulator.

    Columns
    -------
    base_ctr
        Probability of a click on one impression of an untargeted creative in a neutral
        placement (log-normal around 1.1%, lower for older people).
    placement_<name>
        Multiplier of ``base_ctr`` per placement (splash, feed, focus_image, video_preroll,
        tv_boot, lock_screen).
    interest_<name>
        Multiplier of ``base_ctr`` when the creative's topic is that interest:
        ``1 + 0.8 * affinity`` (affinity as in ``people.parquet``; 1 = no effect).
    intent_<name>
        Multiplier when the creative matches a purchase intent: ``1 + 3 * strength``.
    fatigue_halflife
        Impressions of the same campaign after which the click probability halves.
    p_lead, p_activation, p_purchase
        Probability that a click converts (lead form, app activation, purchase).
    p_retention_next_day
        Probability that an app activated through an ad is opened again the next day.
    search_lift
        Multiplicative rise of the person's search rate for the advertised brand's keywords in
        the 7 days after an impression, clicked or not (the true effect of seeing the ad;
        larger for intent holders).
    retarget_boost
        Multiplier of ``base_ctr`` for a person who clicked the same campaign the day before.
    """
    t, n = pop.traits, pop.n
    rng = np.random.default_rng([pop.seed, 4, pop.batch])
    base = np.clip(rng.lognormal(np.log(0.011), 0.6, n) * np.where(t["age"] > 50, 0.7, 1.0),
                   1e-4, 0.3)
    cols = {"person_id": pop.person_id, "base_ctr": np.round(base, 6)}
    for p, mu in zip(PLACEMENTS, (1.3, 1.0, 1.1, 0.8, 1.2, 0.9), strict=True):
        cols[f"placement_{p}"] = np.round(rng.lognormal(np.log(mu), 0.3, n), 4)
    for k, name in enumerate(INTERESTS):
        cols[f"interest_{name}"] = np.round(1 + 0.8 * pop.interest[:, k], 4)
    for k, name in enumerate(INTENTS):
        cols[f"intent_{name}"] = np.round(1 + 3 * pop.intent[:, k], 4)
    intent_any = pop.intent.max(axis=1)
    cols["fatigue_halflife"] = np.round(rng.uniform(3, 12, n), 2)
    cols["p_lead"] = np.round(np.clip(rng.beta(2, 60, n) * (1 + 2 * intent_any), 0, 1), 5)
    cols["p_activation"] = np.round(rng.beta(3, 25, n), 5)
    cols["p_purchase"] = np.round(rng.beta(1.5, 80, n), 5)
    cols["p_retention_next_day"] = np.round(rng.beta(2, 20, n), 5)
    cols["search_lift"] = np.round(rng.gamma(2, 0.25, n) + 1.2 * intent_any, 4)
    cols["retarget_boost"] = np.round(rng.lognormal(np.log(1.8), 0.25, n), 4)
    return pa.table(cols)

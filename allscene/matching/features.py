"""Hashed features for click models: an impression (or any row of categories) in, the
indices of its features in ``2**bits`` buckets out.

Every feature is a token ``namespace=value`` (a cross of two is ``a*b=va|vb``), hashed with
MurmurHash3 (32-bit, seed 0; stable across processes and machines, unlike Python's salted
``hash()``) to ``abs(h) % 2**bits``: the same index as scikit-learn's
``FeatureHasher(alternate_sign=False, input_type="string")``. A missing value (``None``,
NaN, ``""``) is no feature at all; the model's intercept stands for it.

Values are written the same way on every path:

* categories as they are (``True``/``False`` as ``1``/``0``, ``3.0`` as ``3``);
* numbers (person tags such as age or income, Criteo's ``I1``..``I13``): integers up to 16
  exactly, larger ones by ``~int(log(x)**2)`` (the Criteo winners' log buckets: about 15 %
  wide at 30, 5 % at 10,000), other small numbers to one decimal;
* the temperature in 5 degree buckets.

:class:`ImpressionHasher` turns one :class:`Impression` (the request path: a few
microseconds) or a whole column frame (training: vectorized, each distinct value hashed once)
into the same indices. :func:`hash_columns` does it for any table of categorical columns
(the Criteo and Avazu samples).

Examples
--------
>>> h = ImpressionHasher(bits=20)
>>> imp = Impression("phone_feed", creative="acme/spring/c0", campaign="acme/spring",
...                  advertiser="acme", device_type="phone", tags={"gender": "f", "age": 27},
...                  scenes={"commute_transit"}, hour=8, weekday=1, temp_c=3.5,
...                  condition="snow")
>>> h.tokens(imp)[:4]
['p=phone_feed', 'dev=phone', 'cr=acme/spring/c0', 'camp=acme/spring']
>>> len(h.indices(imp)), stable_hash("p=phone_feed", 20)
(17, 990659)
>>> bool((h.indices(imp) == h.indices(imp)).all())
True
>>> X = hash_columns({"site": ["a", "b", None], "n": [1, 40, 3]}, numeric=["n"], bits=10)
>>> X.shape, X.getnnz(axis=1).tolist()
((3, 1024), [2, 2, 1])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import murmurhash3_32

DEFAULT_BITS = 20
CROSSES = (("p", "cr"), ("h", "p"), ("scene", "cr"))
"""The crosses of :class:`ImpressionHasher`: placement x creative, hour x placement,
scene x creative; and each person tag x campaign (``t.age*camp=~10|acme/spring``)."""
_FRAME_NS = {"placement": "p", "device_type": "dev", "creative": "cr", "campaign": "camp",
             "advertiser": "adv", "hour": "h", "weekday": "wd", "temp_c": "temp",
             "condition": "cond", "scene": "scene"}


def stable_hash(token: str, bits: int = DEFAULT_BITS) -> int:
    """The bucket of a token in ``2**bits``: MurmurHash3 x86 32-bit, seed 0.

    >>> stable_hash("p=phone_feed", 20), stable_hash("p=phone_feed", 4)
    (990659, 3)
    """
    return abs(murmurhash3_32(token, 0)) % (1 << bits)


def number_value(x: Any) -> str | None:
    """A number as a feature value: exact up to 16, log buckets above, ``None`` if missing.

    >>> [number_value(v) for v in (3, 16, 17, 30, 34, 10_000, -1, 0.31, None, float("nan"))]
    ['3', '16', '~8', '~11', '~12', '~84', '-1', '0.3', None, None]
    """
    if x is None or isinstance(x, str) and not x:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if x > 16:
        return f"~{int(math.log(x) ** 2)}"
    if x < -16:
        return f"-~{int(math.log(-x) ** 2)}"
    return str(int(x)) if x == int(x) else f"{x:.1f}"


def category_value(x: Any) -> str | None:
    """A category as a feature value; ``None`` if missing.

    >>> [category_value(v) for v in ("rain", True, 3.0, 7, "", None)]
    ['rain', '1', '3', '7', None, None]
    """
    if x is None:
        return None
    if isinstance(x, bool | np.bool_):
        return "1" if x else "0"
    if isinstance(x, float | np.floating):
        if math.isnan(x):
            return None
        return str(int(x)) if x == int(x) else str(x)
    s = str(x)
    return s or None


def temp_bucket(t: Any) -> int | None:
    """The 5 degree bucket of a temperature (its lower edge).

    >>> temp_bucket(3.5), temp_bucket(-0.5), temp_bucket(None)
    (0, -5, None)
    """
    if t is None or isinstance(t, float) and math.isnan(t):
        return None
    return int(math.floor(float(t) / 5.0)) * 5


def tag_values(name: str, value: Any) -> list[str]:
    """The feature values of one person tag: numbers bucketed, several values each one.

    >>> tag_values("age", 27), tag_values("interest", ["golf", "car"]), tag_values("x", None)
    (['~10'], ['car', 'golf'], [])
    """
    if isinstance(value, list | tuple | set | frozenset):
        return [t for v in sorted(value, key=str) for t in tag_values(name, v)]
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        v = category_value(value)
    else:
        v = number_value(value)
    return [] if v is None else [v]


@dataclass(slots=True)
class Impression:
    """One ad shown: where, what, to whom, when, in which weather.

    ``creative`` and ``campaign`` should be unique across advertisers (``adv/campaign/cr``);
    ``tags`` maps a tag name to its value (a number, a string, or several); ``hour`` and
    ``weekday`` are local (``weekday`` ISO, Monday 1).
    """

    placement: str
    creative: str | None = None
    campaign: str | None = None
    advertiser: str | None = None
    device_type: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    scenes: Iterable[str] = ()
    hour: int | None = None
    weekday: int | None = None
    temp_c: float | None = None
    condition: str | None = None


class ImpressionHasher:
    """Hashed features of impressions: placement, device type, creative, campaign,
    advertiser, person tags, scenes, local hour and weekday, temperature bucket and weather
    condition, and the crosses placement x creative, hour x placement, scene x creative, and
    tag x campaign (without it a linear model ranks campaigns alike for everyone).

    Parameters
    ----------
    bits
        The features go into ``2**bits`` buckets.
    """

    def __init__(self, bits: int = DEFAULT_BITS):
        if not 1 <= bits <= 30:
            raise ValueError(f"bits must be in 1..30, not {bits}")
        self.bits = bits
        self._cache: dict[str, int] = {}

    @property
    def n_features(self) -> int:
        return 1 << self.bits

    def index(self, token: str) -> int:
        """The bucket of a token (memoized: the same tokens come again and again)."""
        i = self._cache.get(token)
        if i is None:
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            i = self._cache[token] = stable_hash(token, self.bits)
        return i

    # -- the parts, so a caller can keep what does not change between requests ---------------
    @staticmethod
    def ad_tokens(placement: str, creative: str | None, campaign: str | None,
                  advertiser: str | None, device_type: str | None) -> list[str]:
        """Placement, device type, creative, campaign, advertiser, placement x creative."""
        out = [f"{ns}={v}" for ns, v in (("p", placement), ("dev", device_type),
               ("cr", creative), ("camp", campaign), ("adv", advertiser)) if v]
        if creative:
            out.append(f"p*cr={placement}|{creative}")
        return out

    @staticmethod
    def person_pairs(tags: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(namespace, value)`` per tag value, in tag order: ``("t.age", "~10")``."""
        return [(f"t.{k}", v) for k in sorted(tags) for v in tag_values(k, tags[k])]

    @staticmethod
    def person_tokens(pairs: list[tuple[str, str]]) -> list[str]:
        """The tag tokens of :meth:`person_pairs`."""
        return [f"{ns}={v}" for ns, v in pairs]

    @staticmethod
    def person_ad_tokens(pairs: list[tuple[str, str]], campaign: str | None) -> list[str]:
        """Each tag value crossed with the campaign: who clicks which campaign."""
        return [f"{ns}*camp={v}|{campaign}" for ns, v in pairs] if campaign else []

    @staticmethod
    def context_tokens(placement: str, creative: str | None, scenes: Iterable[str],
                       hour: int | None, weekday: int | None, temp_c: float | None,
                       condition: str | None) -> list[str]:
        """Scenes, hour, weekday, weather, hour x placement, scene x creative."""
        out = []
        for s in sorted(scenes):
            out.append(f"scene={s}")
            if creative:
                out.append(f"scene*cr={s}|{creative}")
        tb = temp_bucket(temp_c)
        for ns, v in (("h", hour), ("wd", weekday), ("temp", tb), ("cond", condition)):
            v = category_value(v)
            if v is not None:
                out.append(f"{ns}={v}")
        if hour is not None:
            out.append(f"h*p={int(hour)}|{placement}")
        return out

    def tokens(self, imp: Impression) -> list[str]:
        """Every token of an impression (ad, person, context)."""
        return (self.ad_tokens(imp.placement, imp.creative, imp.campaign, imp.advertiser,
                               imp.device_type)
                + self.person_tokens(pairs := self.person_pairs(imp.tags))
                + self.person_ad_tokens(pairs, imp.campaign)
                + self.context_tokens(imp.placement, imp.creative, imp.scenes, imp.hour,
                                      imp.weekday, imp.temp_c, imp.condition))

    def indices_of(self, tokens: Iterable[str]) -> np.ndarray:
        """The buckets of tokens, as ``int32``."""
        return np.fromiter((self.index(t) for t in tokens), np.int32)

    def indices(self, imp: Impression) -> np.ndarray:
        """The feature buckets of one impression (``int32``, with repeats if tokens collide)."""
        return self.indices_of(self.tokens(imp))

    def transform(self, imps: Iterable[Impression]) -> sp.csr_matrix:
        """A binary CSR matrix, one row per impression."""
        return rows_to_csr([self.indices(i) for i in imps], self.n_features)

    def transform_frame(self, frame: Mapping[str, Any]) -> sp.csr_matrix:
        """The same features from columns (one scene per row at most): ``placement``,
        ``creative``, ``campaign``, ``advertiser``, ``device_type``, ``scene``, ``hour``,
        ``weekday``, ``temp_c``, ``condition``, and ``tag.<name>`` per tag (numbers
        bucketed when the column is numeric). Absent columns are missing values.

        >>> h = ImpressionHasher(bits=16)
        >>> imp = Impression("tv_boot", creative="k/c/1", tags={"age": 40, "g": "m"}, hour=21)
        >>> row = h.transform_frame({"placement": ["tv_boot"], "creative": ["k/c/1"],
        ...                          "tag.age": [40], "tag.g": ["m"], "hour": [21]})
        >>> sorted(row.indices.tolist()) == sorted(h.indices(imp).tolist())
        True
        """
        cols: dict[str, Any] = {}
        numeric = []
        for name, col in frame.items():
            if name.startswith("tag."):
                ns = "t." + name[4:]
                arr = np.asarray(col)
                if arr.dtype.kind in "iuf":
                    numeric.append(ns)
                cols[ns] = arr
            elif name in _FRAME_NS:
                arr = np.asarray(col)
                if name == "temp_c":
                    arr = np.floor(arr.astype(float) / 5.0) * 5
                cols[_FRAME_NS[name]] = arr
            else:
                raise ValueError(f"unknown impression column {name!r} (tags are 'tag.<name>')")
        crosses = [c for c in CROSSES if c[0] in cols and c[1] in cols]
        if "camp" in cols:
            crosses += [(ns, "camp") for ns in cols if ns.startswith("t.")]
        return hash_columns(cols, bits=self.bits, numeric=numeric, crosses=crosses)


def rows_to_csr(rows: Sequence[np.ndarray], n_features: int) -> sp.csr_matrix:
    """Index arrays (one per row) as a binary CSR matrix (repeats summed)."""
    lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    idx = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    X = sp.csr_matrix((np.ones(len(idx)), idx, indptr), shape=(len(rows), n_features))
    X.sum_duplicates()
    return X


def _factorize(col: Any) -> tuple[list[Any], np.ndarray]:
    """Distinct values and each row's code; numpy sorts typed arrays, a dict codes the rest."""
    arr = np.asarray(col)
    if arr.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, not of shape {arr.shape}")
    if arr.dtype.kind in "biufUS":
        uniq, inv = np.unique(arr, return_inverse=True)
        return uniq.tolist(), inv.reshape(-1)
    codes: dict[Any, int] = {}
    inv = np.fromiter((codes.setdefault(v, len(codes)) for v in arr.tolist()), np.int64,
                      len(arr))
    return list(codes), inv


def hash_columns(frame: Mapping[str, Any], *, bits: int = DEFAULT_BITS,
                 numeric: Iterable[str] = (), crosses: Iterable[tuple[str, str]] = ()
                 ) -> sp.csr_matrix:
    """A binary CSR matrix of hashed ``column=value`` features, one row per row.

    Each distinct value of a column is formatted and hashed once (:func:`number_value` for
    the ``numeric`` columns, :func:`category_value` for the others); ``crosses`` name pairs
    of columns whose value pairs are features too (``a*b=va|vb``).

    >>> X = hash_columns({"a": ["x", "y"], "b": [1.0, None]}, bits=8, crosses=[("a", "b")])
    >>> X.getnnz(axis=1).tolist(), X.indices[:3].tolist() == sorted(
    ...     stable_hash(t, 8) for t in ["a=x", "b=1", "a*b=x|1"])
    ([3, 1], True)
    """
    numeric = set(numeric)
    n_rows = None
    coded: dict[str, tuple[list[str | None], np.ndarray]] = {}
    parts = []
    for name, col in frame.items():
        uniq, inv = _factorize(col)
        if n_rows is None:
            n_rows = len(inv)
        elif len(inv) != n_rows:
            raise ValueError(f"column {name!r} has {len(inv)} rows, the first had {n_rows}")
        fmt = number_value if name in numeric else category_value
        vals = [fmt(u) for u in uniq]
        coded[name] = (vals, inv)
        lut = np.array([-1 if v is None else stable_hash(f"{name}={v}", bits) for v in vals]
                       + [-1], np.int64)
        parts.append(lut[inv])
    for a, b in crosses:
        (va, ia), (vb, ib) = coded[a], coded[b]
        pair = ia * len(vb) + ib
        upair, pinv = np.unique(pair, return_inverse=True)
        lut = np.array([-1 if va[p // len(vb)] is None or vb[p % len(vb)] is None else
                        stable_hash(f"{a}*{b}={va[p // len(vb)]}|{vb[p % len(vb)]}", bits)
                        for p in upair.tolist()] + [-1], np.int64)
        parts.append(lut[pinv.reshape(-1)])
    if n_rows is None:
        raise ValueError("no columns to hash")
    M = np.stack(parts, axis=1) if parts else np.zeros((n_rows, 0), np.int64)
    keep = M >= 0
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    idx = M[keep].astype(np.int32)
    X = sp.csr_matrix((np.ones(len(idx)), idx, indptr), shape=(n_rows, 1 << bits))
    X.sum_duplicates()
    return X


def hash_row(row: Mapping[str, Any], *, bits: int = DEFAULT_BITS,
             numeric: Iterable[str] = ()) -> np.ndarray:
    """The feature buckets of one row of categories, as :func:`hash_columns` makes them.

    >>> r = {"site": "a", "n": 40}
    >>> hash_row(r, bits=10, numeric=["n"]).tolist() == sorted(
    ...     hash_columns({k: [v] for k, v in r.items()}, bits=10, numeric=["n"]).indices)
    True
    """
    numeric = set(numeric)
    out = []
    for k, v in row.items():
        s = number_value(v) if k in numeric else category_value(v)
        if s is not None:
            out.append(stable_hash(f"{k}={s}", bits))
    return np.array(sorted(out), np.int32)

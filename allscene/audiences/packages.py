"""Custom audience packages (人群包): an advertiser's file of hashed device ids, matched to people.

The file holds one id per line: the MD5 (32 hex) or SHA-256 (64 hex) digest of a phone's
IMEI (15 digits) or OAID. Surrounding whitespace and a trailing ``\\r`` are stripped, hex is
read in either case, blank lines and lines starting with ``#`` are ignored, and an id that
occurs twice is counted once. The first other line may name the format: ``imei_md5``,
``imei_sha256``, ``oaid_md5`` or ``oaid_sha256`` (any case). With it, only that kind of id
is matched and a digest of the other algorithm is a malformed line; without it, each
line's algorithm is told by its length and either id type may match. gzip files are read
as such (found by their first bytes, whatever the name); UTF-8 (with or without a BOM) and
UTF-16 with its BOM (Excel's "Unicode text") are accepted.

A malformed line does not fail the upload, as advertisers expect of Tencent's and Xiaomi's
platforms: it is counted and the first ones are listed with their line number and why
(``strict=True`` raises instead). A raw, unhashed IMEI or OAID is refused: ids must be
hashed before they leave the advertiser. A raw OAID of 64 hex characters (some vendors
issue those) cannot be told from a SHA-256 digest; it is read as one and matches nobody.

Parsing is vectorized with pyarrow over blocks of the file, so memory stays bounded by the
block size plus the distinct ids; matching is a pyarrow set lookup, with no engine.

Examples
--------
>>> import hashlib, pyarrow as pa
>>> md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
>>> package = read_package(["imei_md5", md5("860000000000001"), md5("860000000000001").upper(),
...                         "", "# our CRM export", "860000000000002", md5("860000000000009")])
>>> package.valid, package.ids, package.duplicates, package.invalid
(3, 2, 1, 1)
>>> print(package.errors[0])  # doctest: +ELLIPSIS
line 6: '860000000000002' looks like a raw IMEI (15 digits): ids must be hashed (MD5 or ...
>>> hashes = pa.table({"hash": [md5("860000000000001")], "id_type": ["imei"],
...                    "algo": ["md5"], "person_id": ["alice"]})
>>> m = match_package(package, hashes, person_ids=["bob", "alice"])
>>> m.people.to_pylist(), list(m.rows), m.match_rate
(['alice'], [1], 0.5)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _
from pyroaring import BitMap

ID_TYPES = ("imei", "oaid")
ALGOS = ("md5", "sha256")
HEADERS = tuple(f"{i}_{a}" for i in ID_TYPES for a in ALGOS)
LENGTH = {"md5": 32, "sha256": 64}
ALGO_NAME = {"md5": "MD5", "sha256": "SHA-256"}
_AN = {"md5": "an MD5", "sha256": "a SHA-256"}
# An empty id hashed by a careless export: valid-looking, but it would match nobody (or,
# worse, everyone whose id was missing at the source).
EMPTY_DIGESTS = ("d41d8cd98f00b204e9800998ecf8427e",
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
MAX_ERRORS = 20
BLOCK_SIZE = 1 << 26
MAX_LINE = 1 << 20
_GZIP, _UTF8_BOM, _UTF16_BOMS = b"\x1f\x8b", b"\xef\xbb\xbf", (b"\xff\xfe", b"\xfe\xff")
_HEX = re.compile(r"[0-9a-f]+")
# A first line that reads like a column name ("device_id", "IDFA_MD5"): a header we do not know.
_HEADERISH = re.compile(r"(?=[a-z])[a-z0-9_\-]*(imei|oaid|idfa|md5|sha|hash|id)[a-z0-9_\-]*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class PackageError(ValueError):
    """A package refused as a whole: malformed lines or no ids in strict mode, or not a text
    file of lines at all; ``errors`` lists the first malformed lines."""

    def __init__(self, message: str, errors: Sequence[LineError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


@dataclass(frozen=True)
class LineError:
    """A malformed line: its number (from 1, counting every line), its text, and why."""

    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Package:
    """A parsed package: the distinct digests (lowercase hex, in order of first occurrence)
    and what was read. ``valid`` counts id lines including repeats; ``errors`` holds the first
    malformed lines, ``invalid`` counts them all."""

    hashes: pa.Array
    id_type: str | None
    algo: str | None
    lines: int
    valid: int
    invalid: int
    errors: list[LineError] = field(default_factory=list)

    @property
    def ids(self) -> int:
        """Distinct valid ids."""
        return len(self.hashes)

    @property
    def duplicates(self) -> int:
        """Valid lines repeating an id seen earlier."""
        return self.valid - self.ids


@dataclass
class PackageMatch:
    """A package matched to people.

    ``people`` are the distinct matched ``person_id`` (sorted); ``rows`` their row numbers in
    the ``person_ids`` ordering given to :func:`match_package` (people missing from it are
    left out), else ``None``. ``match_rate`` = matched distinct ids / distinct valid ids.
    """

    people: pa.Array
    rows: BitMap | None
    lines: int
    valid: int
    invalid: int
    duplicates: int
    ids: int
    matched_ids: int
    matched_people: int
    match_rate: float
    errors: list[LineError]

    def summary(self) -> dict:
        """The counts and the listed malformed lines, ready for JSON."""
        out = {k: v for k, v in asdict(self).items() if k not in ("people", "rows", "errors")}
        return out | {"errors": [asdict(e) for e in self.errors]}


def _quote(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _reason(text: str, header: str | None, first: bool) -> str:
    """Why ``text`` (stripped) is not an id; ``first``: it is the first non-comment line."""
    t, q = text.lower(), _quote(text)
    algo = header.split("_")[1] if header else None
    if t in HEADERS:
        return f"{q} is a header, which is only read as the first line"
    if first and _HEADERISH.fullmatch(t) and not _HEX.fullmatch(t):
        return (f"unknown header {q}: the first line may name the format, one of "
                f"{', '.join(HEADERS)}")
    if _HEX.fullmatch(t) and len(t) in (32, 64):
        got = "md5" if len(t) == 32 else "sha256"
        if t in EMPTY_DIGESTS:
            return f"{q} is the {ALGO_NAME[got]} of an empty string: an empty id was hashed"
        return f"{q} is {_AN[got]} digest, but the header declares {header}"
    if t.isdigit() and len(t) == 15:
        return (f"{q} looks like a raw IMEI (15 digits): ids must be hashed (MD5 or SHA-256) "
                "before upload")
    if _UUID.fullmatch(t):
        return f"{q} looks like a raw OAID: ids must be hashed (MD5 or SHA-256) before upload"
    if _HEX.fullmatch(t) and len(t) == 16:
        return (f"{q} is 16 hex characters, a raw OAID or a truncated (16-character) MD5: "
                "upload the full 32-character MD5 or 64-character SHA-256")
    if re.search(r"[\s,;|]", t):
        return f"{q} holds several values: put one id per line"
    if algo:
        return f"{q} is not {_AN[algo]} ({LENGTH[algo]} hex) digest"
    return f"{q} is not an MD5 (32 hex) or SHA-256 (64 hex) digest"


class _Parser:
    """Reads blocks of lines, vectorized; keeps the counts, the first errors, the ids."""

    def __init__(self, max_errors: int) -> None:
        self.max_errors = max_errors
        self.header: str | None = None
        self.first_line = 0  # number of the first non-blank, non-comment line, once seen
        self.lines = self.valid = self.invalid = 0
        self.errors: list[LineError] = []
        self.ids: list[pa.Array] = []

    def feed(self, raw: pa.Array) -> None:
        start = self.lines + 1
        self.lines += len(raw)
        stripped = pc.utf8_trim_whitespace(raw)  # spaces, tabs and the '\r' of CRLF files
        text = pc.ascii_lower(stripped)
        size = pc.binary_length(text).to_numpy(zero_copy_only=False)
        skip = (size == 0) | pc.starts_with(text, "#").to_numpy(zero_copy_only=False)
        if not self.first_line and not skip.all():
            i = int(np.argmin(skip))
            self.first_line = start + i
            if text[i].as_py() in HEADERS:
                self.header = text[i].as_py()
        if self.header:  # also skips the header repeated in packages concatenated with cat
            skip |= pc.equal(text, self.header).to_numpy(zero_copy_only=False)
        hexa = pc.match_substring_regex(text, "^[0-9a-f]+$").to_numpy(zero_copy_only=False)
        if self.header:
            ok = hexa & (size == LENGTH[self.header.split("_")[1]])
        else:
            ok = hexa & ((size == 32) | (size == 64))
        ok &= ~pc.is_in(text, pa.array(EMPTY_DIGESTS)).to_numpy(zero_copy_only=False)
        ok &= ~skip
        self.valid += int(ok.sum())
        self.ids.append(text.filter(pa.array(ok)))
        bad = np.flatnonzero(~ok & ~skip)
        self.invalid += len(bad)
        for i in bad[: max(0, self.max_errors - len(self.errors))].tolist():
            line = stripped[i].as_py()
            self.errors.append(LineError(start + i, line, _reason(
                line, self.header, start + i == self.first_line)))

    def package(self) -> Package:
        ids = pa.chunked_array(self.ids, pa.large_string())
        algo = self.header.split("_")[1] if self.header else None
        return Package(hashes=pc.unique(ids), id_type=self.header.split("_")[0]
                       if self.header else None, algo=algo, lines=self.lines,
                       valid=self.valid, invalid=self.invalid, errors=self.errors)


def _open(source: str | os.PathLike | bytes) -> pa.NativeFile:
    """The file or bytes as a stream, gunzipped when it starts as gzip does."""
    f: pa.NativeFile = (pa.BufferReader(pa.py_buffer(source))
                        if isinstance(source, bytes | bytearray | memoryview)
                        else pa.OSFile(os.fspath(source)))
    gzipped = f.read(2) == _GZIP
    f.seek(0)
    return pa.CompressedInputStream(f, "gzip") if gzipped else f


def _blocks(f: pa.NativeFile, block_size: int) -> Iterator[pa.Array]:
    """Arrays of lines from ``f``, read ``block_size`` bytes at a time, cut after a newline."""
    data = f.read(max(block_size, 3))  # at least a whole BOM
    if data[:2] in _UTF16_BOMS:
        # Excel's "Unicode text" is UTF-16: rare and small enough to convert whole.
        data = (data + f.read()).decode("utf-16", errors="replace").encode()
    chunk, carry, more = data.removeprefix(_UTF8_BOM), b"", bool(data)
    while more:
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut >= 0:
            yield _split(memoryview(data)[:cut + 1])
        carry = data[cut + 1:]
        if len(carry) > MAX_LINE:  # a binary file: do not buffer it whole looking for lines
            raise PackageError("over 1 MiB without a line break: a package is a text file of "
                               "one id per line")
        chunk = f.read(block_size)
        more = bool(chunk)
    if carry:  # the last line, without a newline
        yield _split(carry)


def _split(data: bytes | memoryview) -> pa.Array:
    """The lines of ``data`` (each keeping its newline, which trimming drops), without
    copying: offsets after each newline over the bytes as they are. Bytes that are not UTF-8
    are replaced, so such a line is reported rather than failing the whole file."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1
    if not len(ends) or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = pa.py_buffer(np.concatenate([[0], ends]).astype(np.int64))
    lines = pa.Array.from_buffers(pa.large_binary(), len(ends), [None, offsets,
                                                                 pa.py_buffer(data)])
    try:
        return lines.cast(pa.large_string())
    except pa.ArrowInvalid:
        return _split(bytes(data).decode("utf-8", errors="replace").encode())


def _batches(lines: Iterable[str], size: int = 1 << 20) -> Iterator[pa.Array]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield pa.array(batch, pa.large_string())
            batch = []
    if batch:
        yield pa.array(batch, pa.large_string())


def read_package(source: str | os.PathLike | bytes | Iterable[str], *, strict: bool = False,
                 max_errors: int = MAX_ERRORS, block_size: int = BLOCK_SIZE) -> Package:
    """Parse a package: a path, the file's bytes, or its lines (one ``str`` per line).

    Parameters
    ----------
    strict
        Raise :class:`PackageError` if any line is malformed (naming the first ones) or no
        id is left, instead of skipping and reporting them.
    max_errors
        How many malformed lines to list (all are counted).
    block_size
        Bytes read at a time: bounds memory besides the ids themselves.

    Examples
    --------
    >>> p = read_package(b"oaid_sha256\\r\\n" + b"AB" * 32 + b"\\r\\n" + b"ab" * 16 + b"\\r\\n")
    >>> p.id_type, p.algo, p.hashes.to_pylist() == ["ab" * 32], p.errors[0].line
    ('oaid', 'sha256', True, 3)
    >>> print(p.errors[0].reason)  # doctest: +ELLIPSIS
    'abab...abab' is an MD5 digest, but the header declares oaid_sha256
    >>> read_package(["abc"], strict=True)
    Traceback (most recent call last):
    ...
    allscene.audiences.packages.PackageError: 1 malformed line: line 1: 'abc' is not an MD5 (32 hex) or SHA-256 (64 hex) digest
    """
    parser = _Parser(max_errors)
    if isinstance(source, str | os.PathLike | bytes | bytearray | memoryview):
        with _open(source) as f:
            for lines in _blocks(f, block_size):
                parser.feed(lines)
    else:
        for lines in _batches(source):
            parser.feed(lines)
    package = parser.package()
    if strict and package.invalid:
        shown = "; ".join(str(e) for e in package.errors[:5])
        more = f" (and {package.invalid - 5} more)" if package.invalid > 5 else ""
        s = "s" if package.invalid > 1 else ""
        raise PackageError(f"{package.invalid} malformed line{s}: {shown}{more}", package.errors)
    if strict and not package.ids:
        raise PackageError("the package holds no ids")
    return package


def device_hashes(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``hash, id_type, algo, person_id``: the hashed ids that logins carry, with the person
    owning the device (from the identity ``devices`` table).

    One row per ``hash, id_type, algo``: should a hash be seen on devices of several people,
    the person seen with it most wins, ties broken by the latest login, then by id.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> t = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
    >>> none = pa.nulls(1, pa.string())
    >>> events = ibis.memtable(pa.table({"kind": ["login"], "device_id": ["p1"], "ts": [t],
    ...     "imei_md5": ["a" * 32], "imei_sha256": none, "oaid_md5": none,
    ...     "oaid_sha256": ["b" * 64]}))
    >>> devices = ibis.memtable(pa.table({"device_id": ["p1"], "person_id": ["alice"]}))
    >>> sorted(tuple(r.values())[1:] for r in device_hashes(events, devices).to_pyarrow()
    ...        .to_pylist())
    [('imei', 'md5', 'alice'), ('oaid', 'sha256', 'alice')]
    """
    logins = events.filter(_.kind == "login")
    # The event schema only admits lowercase hex, so the digests are compared as stored.
    ids = ibis.union(*(
        logins.filter(logins[f"{i}_{a}"].notnull()).select(
            "device_id", "ts", hash=logins[f"{i}_{a}"], id_type=ibis.literal(i),
            algo=ibis.literal(a))
        for i in ID_TYPES for a in ALGOS))
    owners = devices.filter(_.person_id.notnull()).select("device_id", "person_id")
    linked = ids.join(owners, ids.device_id == owners.device_id).select(
        ids.hash, ids.id_type, ids.algo, owners.person_id, ids.ts)
    g = linked.group_by(["hash", "id_type", "algo", "person_id"]).agg(n=_.count(),
                                                                      last=_.ts.max())
    w = ibis.window(group_by=[g.hash, g.id_type, g.algo],
                    order_by=[ibis.desc(g.n), ibis.desc(g.last), g.person_id])
    return (g.mutate(r=ibis.row_number().over(w)).filter(_.r == 0)
            .select("hash", "id_type", "algo", "person_id"))


def match_package(package: Package, hashes: pa.Table,
                  person_ids: Sequence[str] | pa.Array | None = None) -> PackageMatch:
    """Match ``package`` against ``hashes`` (the rows of :func:`device_hashes`).

    A package with a header matches only hashes of its id type and algorithm. Give
    ``person_ids`` (the people of a tag index, in row order) to get the matched rows as a
    bitmap, ready to combine with audience expressions.
    """
    if package.id_type:
        hashes = hashes.filter(pc.and_(pc.equal(hashes["id_type"], package.id_type),
                                       pc.equal(hashes["algo"], package.algo)))
    # A set lookup of the hash table's rows in the package's ids: the hash table has one row
    # per id, so no join (nor its build side of up to four rows per person) is needed.
    hit = hashes.filter(pc.is_in(hashes["hash"], value_set=package.hashes))
    people = pc.unique(hit["person_id"]).sort()
    rows = None
    if person_ids is not None:
        index = (person_ids.combine_chunks() if isinstance(person_ids, pa.ChunkedArray)
                 else pa.array(person_ids, pa.string()))
        at = pc.index_in(people, value_set=index).drop_null()
        rows = BitMap(at.to_numpy().astype(np.uint32))
    matched = len(pc.unique(hit["hash"]))  # the same digest as IMEI and OAID: once
    return PackageMatch(
        people=people, rows=rows, lines=package.lines, valid=package.valid,
        invalid=package.invalid, duplicates=package.duplicates, ids=package.ids,
        matched_ids=matched, matched_people=len(people),
        match_rate=matched / package.ids if package.ids else 0.0, errors=package.errors)

"""Custom audience packages: parsing (line numbers and reasons for every kind of bad line),
matching the session world's phones back to their people, and the hash table built
identically on every batch engine."""

import gzip
import hashlib
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allscene.audiences.packages import (
    PackageError,
    device_hashes,
    match_package,
    read_package,
)
from allscene.identity import device_graph
from allscene.storage.engines import connect


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.fixture(scope="module")
def phones(world) -> list[dict]:
    """The world's phones: ``person_id`` (hidden), ``imei``, ``oaid``, ``account_id`` (the
    platform's person id: a phone's person is the account it signs in to)."""
    devices = pq.read_table(world[0] / "truth" / "devices.parquet")
    return [d for d in devices.to_pylist() if d["device_type"] == "phone"]


@pytest.fixture(scope="module")
def hashes(world_log) -> pa.Table:
    events = world_log.table(con=connect("duckdb"))
    devices, _ = device_graph(events)
    return device_hashes(events, devices).to_pyarrow()


def build(real: list[str], fake: list[str], bad: dict[int, str], *, header: str | None = None,
          dups: int = 20, seed: int = 3) -> tuple[list[str], dict[int, str]]:
    """Package lines: ``real`` and ``fake`` ids shuffled (some upper case, some padded, a few
    repeated), blank and comment lines, and ``bad`` lines put after the given id positions.
    Returns the lines and the line number of each bad line."""
    rng = random.Random(seed)
    ids = real + fake + rng.sample(real, dups)
    rng.shuffle(ids)
    lines = [header] if header else []
    lines += ["# exported from our CRM", ""]
    where: dict[int, str] = {}
    for k, x in enumerate(ids):
        if k in bad:
            lines.append(bad[k])
            where[len(lines)] = bad[k]
        lines.append(rng.choice([x, x.upper(), f"  {x} ", f"{x}\r"]))
        if k % 97 == 0:
            lines.append("")
    return lines, where


BAD_MD5 = {  # what an advertiser's export gets wrong, and the reason each is refused for
    5: ("abc", "'abc' is not an MD5 (32 hex) or SHA-256 (64 hex) digest"),
    40: ("860001234567897", "looks like a raw IMEI (15 digits): ids must be hashed"),
    41: ("0123456789abcdef", "a raw OAID or a truncated (16-character) MD5"),
    200: ("d41d8cd98f00b204e9800998ecf8427e", "is the MD5 of an empty string"),
    333: (md5("x") + "," + md5("y"), "holds several values: put one id per line"),
    599: ("g" * 32, "is not an MD5 (32 hex) or SHA-256 (64 hex) digest"),
}


def test_imei_md5_package_matches_exactly_its_people(phones, hashes, tmp_path):
    rng = random.Random(1)
    chosen = rng.sample(phones, 500)
    fake = [md5(f"made-up-{i}") for i in range(100)]
    lines, where = build([md5(p["imei"]) for p in chosen], fake,
                         {k: text for k, (text, _) in BAD_MD5.items()})
    path = tmp_path / "package.txt"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())

    m = match_package(read_package(path), hashes)
    assert set(m.people.to_pylist()) == {p["account_id"] for p in chosen}
    assert (m.matched_ids, m.matched_people, m.ids) == (500, 500, 600)
    assert m.match_rate == pytest.approx(500 / 600)
    assert (m.valid, m.duplicates, m.invalid, m.lines) == (620, 20, len(BAD_MD5), len(lines))
    assert [(e.line, e.text) for e in m.errors] == sorted(where.items())
    for e, (_, (_, reason)) in zip(m.errors, sorted(BAD_MD5.items()), strict=True):
        assert reason in e.reason and str(e).startswith(f"line {e.line}: ")
    assert str(m.errors[0]) == f"line {m.errors[0].line}: 'abc' is not an MD5 (32 hex) or " \
                               "SHA-256 (64 hex) digest"
    # The same package given as lines, gzipped, or gzipped bytes reads the same.
    gz = tmp_path / "package.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for source in (lines, gz, gz.read_bytes(), path.read_bytes()):
        again = match_package(read_package(source), hashes)
        assert again.summary() == m.summary()
        assert again.people.equals(m.people)


def test_rows_follow_the_person_index(phones, hashes):
    """Given the people of a tag index in row order, the match is a bitmap of their rows."""
    index = sorted(p["account_id"] for p in phones)
    index.reverse()
    chosen = random.Random(2).sample(phones, 50)
    m = match_package(read_package([md5(p["imei"]) for p in chosen]), hashes, person_ids=index)
    assert {index[i] for i in m.rows} == {p["account_id"] for p in chosen}
    # People outside the index are in `people` but have no row.
    m = match_package(read_package([md5(p["imei"]) for p in chosen]), hashes,
                      person_ids=index[:1500])
    assert len(m.rows) < 50 and {index[i] for i in m.rows} <= set(m.people.to_pylist())


def test_oaid_sha256_package_with_its_header(phones, hashes):
    rng = random.Random(4)
    chosen = rng.sample(phones, 500)
    fake = [sha256(f"made-up-{i}") for i in range(100)]
    imei_md5 = md5(chosen[0]["imei"])
    lines, where = build([sha256(p["oaid"]) for p in chosen], fake,
                         {10: imei_md5, 11: "oaid_md5", 12: chosen[1]["oaid"]}, header="oaid_sha256")
    p = read_package(lines)
    assert (p.id_type, p.algo) == ("oaid", "sha256")
    m = match_package(p, hashes)
    assert set(m.people.to_pylist()) == {c["account_id"] for c in chosen}
    assert m.match_rate == pytest.approx(500 / 600) and m.invalid == 3
    assert [(e.line, e.text) for e in m.errors] == sorted(where.items())
    assert [e.reason for e in m.errors] == [
        f"'{imei_md5}' is an MD5 digest, but the header declares oaid_sha256",
        "'oaid_md5' is a header, which is only read as the first line",
        f"'{chosen[1]['oaid']}' is 16 hex characters, a raw OAID or a truncated (16-character) "
        "MD5: upload the full 32-character MD5 or 64-character SHA-256"]


def test_a_header_restricts_the_match_to_its_id_type(phones, hashes):
    """IMEI digests under an OAID header are well formed but match nobody; without the
    header they match."""
    chosen = random.Random(5).sample(phones, 100)
    ids = [sha256(p["imei"]) for p in chosen]
    under_oaid = match_package(read_package(["OAID_SHA256", *ids]), hashes)
    assert (under_oaid.ids, under_oaid.invalid, under_oaid.matched_people) == (100, 0, 0)
    assert match_package(read_package(["imei_sha256", *ids]), hashes).matched_people == 100
    assert match_package(read_package(ids), hashes).matched_people == 100


def test_strict_mode_raises_with_the_first_bad_lines():
    good = [md5(str(i)) for i in range(10)]
    lines = ["imei_md5", *good[:5], "", "abc", *good[5:], sha256("1")]
    with pytest.raises(PackageError) as err:
        read_package(lines, strict=True)
    assert str(err.value).startswith("2 malformed lines: line 8: 'abc' is not an MD5 (32 hex) "
                                     "digest; line 14: ")
    assert [e.line for e in err.value.errors] == [8, 14]
    assert read_package(lines[:7], strict=True).ids == 5
    with pytest.raises(PackageError, match="holds no ids"):
        read_package(["# nothing", ""], strict=True)


def test_odd_files_still_read():
    """A BOM, UTF-16 (Excel's "Unicode text"), bytes that are not UTF-8, no final newline,
    an unknown header, and every block size give the same lines and numbers."""
    ids = [md5(str(i)) for i in range(30)]
    text = "\n".join(["device_id", *ids[:10], "\t", *ids[10:], "caf\xe9"])
    ref = read_package(text.splitlines())
    assert [(e.line, e.reason[:14]) for e in ref.errors] == [
        (1, "unknown header"), (33, "'café' is not ")]
    for data in (text.encode(), b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16"),
                 text.encode() + b"\n"):
        for block in (1, 5, 33, 1 << 20):
            p = read_package(data, block_size=block)
            assert (p.lines, p.valid, p.hashes.to_pylist()) == (33, 30, ids)
            assert [e.line for e in p.errors] == [1, 33]
    latin1 = read_package(text.encode("latin-1"))
    assert latin1.errors[1].line == 33 and latin1.valid == 30
    with pytest.raises(PackageError, match="without a line break"):
        read_package(b"x" * (2 << 20))  # a binary file is not buffered whole
    many = read_package(["x"] * 100, max_errors=3)
    assert many.invalid == 100 and [e.line for e in many.errors] == [1, 2, 3]


def test_device_hashes_map_each_phone_id_to_its_person(phones, hashes):
    """Every phone's four hashed ids, and nothing else, point to the phone's account."""
    expected = sorted(
        (h, i, a, p["account_id"]) for p in phones for i in ("imei", "oaid")
        for a, f in (("md5", md5), ("sha256", sha256)) for h in [f(p[i])])
    got = sorted(tuple(r.values()) for r in hashes.to_pylist())
    assert hashes.column_names == ["hash", "id_type", "algo", "person_id"]
    assert got == expected and len(got) == 4 * 3000


def test_device_hashes_are_identical_on_every_engine(world_log, batch_engine, hashes):
    events = world_log.table(con=batch_engine)
    devices, _ = device_graph(events)
    assert rows(device_hashes(events, devices).to_pyarrow()) == rows(hashes)

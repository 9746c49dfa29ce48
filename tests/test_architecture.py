"""The layout rules of DESIGN.md, checked: engines only in storage, the truth set only in
world (and tests and benchmarks), domain packages free of api and cli."""

import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "allscene"
ENGINES = re.compile(r"^\s*(import|from)\s+(duckdb|pyspark|redis|sqlalchemy|psycopg)\b", re.M)


def sources(exclude: str = "") -> dict[str, str]:
    return {str(p.relative_to(PKG)): p.read_text() for p in PKG.rglob("*.py")
            if not (exclude and str(p.relative_to(PKG)).startswith(exclude))}


def test_only_storage_imports_engines():
    offenders = [f for f, src in sources("storage/").items() if ENGINES.search(src)]
    assert offenders == []


def test_platform_code_never_mentions_the_truth_set():
    offenders = [f for f, src in sources("world/").items() if "truth" in src.lower()]
    assert offenders == []


def test_domain_packages_do_not_import_api_or_cli():
    pat = re.compile(r"^\s*(from|import)\s+allscene\.(api|cli)\b", re.M)
    offenders = [f for f, src in sources().items()
                 if not f.startswith(("api/", "cli.py")) and pat.search(src)]
    assert offenders == []

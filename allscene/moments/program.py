"""A catalog compiled for the kernel: its conditions as machine code, its wiring as arrays.

:func:`program_of` writes the kernel's source (:mod:`allscene.moments.kernel`) followed by
two functions, ``cond_when`` and ``cond_until``, holding every scene's condition as a branch
of a binary tree on the scene index, to ``ALLSCENE_CACHE`` (default
``~/.cache/allscene``)``/moments/scenes_<hash>.py``, and imports it. Numba compiles it on
first use and caches the machine code beside it, so a catalog is compiled once per machine
(about half a minute for the packaged one) and loads in a fraction of a second after that.

The wiring (what can change a scene) is kept as CSR arrays: for a list-of-lists ``x``,
``x_ptr[i]:x_ptr[i + 1]`` slices ``x_idx``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numba
import numpy as np

from allscene.moments import kernel
from allscene.moments.catalog import Catalog

_MODULES: dict[str, ModuleType] = {}


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    idx = np.array([x for r in rows for x in r], np.int64)
    return ptr, idx


def cache_dir() -> Path:
    base = os.environ.get("ALLSCENE_CACHE") or Path.home() / ".cache" / "allscene"
    return Path(base) / "moments"


def _tree(conds: list[str], lo: int, hi: int, ind: str) -> list[str]:
    if hi - lo == 1:
        return [f"{ind}return {conds[lo]}"]
    mid = (lo + hi) // 2
    return [f"{ind}if k < {mid}:", *_tree(conds, lo, mid, ind + "    "),
            *_tree(conds, mid, hi, ind)]


def source(catalog: Catalog) -> str:
    """The kernel's source with the catalog's conditions appended."""
    args = "k, r, p, t, hi, M, S, last, act, cal, W, slot, rt, rv, rhead, rlen"
    out = [Path(kernel.__file__).read_text(encoding="utf-8"), "",
           "# --- the catalog's conditions " + "-" * 62, ""]
    for name, conds in (("cond_when", [c.code for c in catalog.when]),
                        ("cond_until", [c.code if c else "False" for c in catalog.until])):
        out += ["", "@njit(cache=True)", f"def {name}({args}):  # noqa: F811",
                *(_tree(conds, 0, len(conds), "    ") if conds else ["    return False"]), ""]
    return "\n".join(out)


def _module(catalog: Catalog) -> ModuleType:
    text = source(catalog)
    key = hashlib.sha256((text + numba.__version__).encode("utf-8")).hexdigest()[:16]
    mod = _MODULES.get(key)
    if mod is not None:
        return mod
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile into the temporary folder instead
        import tempfile

        folder = Path(tempfile.gettempdir()) / "allscene-moments"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"scenes_{key}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: processes compiling the same catalog agree
    name = f"_allscene_scenes_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _MODULES[key] = mod
    return mod


@dataclass
class Program:
    """A compiled catalog: the module holding :func:`run` and the wiring arrays it takes."""

    module: ModuleType
    wiring: tuple  # the arrays run() takes after the output arrays, in order
    strings: dict[str, int]
    n_seen: int
    n_series: int
    text_series: frozenset[int]


def program_of(catalog: Catalog) -> Program:
    """Compile ``catalog`` (cached in memory and on disk)."""
    from allscene.moments.names import CITY, NETWORK, PLACE, TIME

    n = len(catalog.scenes)
    nsig = len(catalog.signals)
    idx = {s.id: s.index for s in catalog.scenes}
    by_sig: list[list[int]] = [[] for _ in range(nsig * 48)]
    watch: list[list[int]] = [[] for _ in range(nsig)]
    users: list[set[int]] = [set() for _ in range(n)]
    ctx_free: list[list[int]] = [[] for _ in range(16 * 48)]
    clock: list[int] = []
    for k in range(n):
        w, u = catalog.when[k], catalog.until[k]
        for c in (w, u):
            for d in (c.scenes if c else ()):
                users[idx[d]].add(k)
        # An inactive scene is tried for entry on the signals that can open its gate (all
        # it reads if it has none); an active one is re-checked on every signal it reads.
        for sig in sorted(w.signals | (u.signals if u else set())):
            watch[sig].append(k)
            if w.gates is None or sig in w.gates:
                for sl in range(48):
                    if w.slots[sl]:
                        by_sig[sig * 48 + sl].append(k)
        bits = w.context | (u.context if u else 0)
        # A gated scene (its `when` needs a matching event) is entered only at such an
        # event: a change of context matters only while it is active.
        if w.gates is None:
            for mask in range(16):
                if mask & bits:
                    for sl in range(48):
                        if w.slots[sl]:
                            ctx_free[mask * 48 + sl].append(k)
        if w.clock or (u and u.clock):
            clock.append(k)
    for k, us in enumerate(users):
        if any(x <= k for x in us):
            raise ValueError(f"scene {catalog.scenes[k].id!r} is read by a scene before it")
    assert TIME | PLACE | NETWORK | CITY == 15
    seen_col = np.full(nsig, -1, np.int64)
    for sig, col in catalog.seen_cols.items():
        seen_col[sig] = col
    series_of: list[list[int]] = [[] for _ in range(nsig)]
    for sid, (sig, _) in enumerate(catalog.series):
        series_of[sig].append(sid)
    needs = [[c for c, _ in w.needs] for w in catalog.when]
    wins = [[x for _, x in w.needs] for w in catalog.when]
    in_need = [[idx[x] for x in w.in_scenes] for w in catalog.when]
    wiring = (
        *_csr(by_sig), *_csr(watch), *_csr([sorted(u) for u in users]), *_csr(ctx_free),
        np.array(clock, np.int64), *_csr(needs), np.array([x for r in wins for x in r], np.int64),
        *_csr(in_need),
        np.array([w.context | (u.context if u else 0)
                  for w, u in zip(catalog.when, catalog.until, strict=True)], np.int64),
        np.array([w.gates is None for w in catalog.when], np.bool_),
        np.array([s.lasts_us for s in catalog.scenes], np.int64),
        np.array([u is not None for u in catalog.until], np.bool_),
        seen_col, *_csr(series_of),
        np.array([catalog.windows.get(s, 0) for s in range(len(catalog.series))], np.int64),
        catalog.strings["restday"],
    )
    return Program(_module(catalog), wiring, catalog.strings, len(catalog.seen_cols),
                   len(catalog.series), frozenset(catalog.text_series))

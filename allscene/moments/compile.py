"""Check a condition tree against the event schema and the catalog, and compile it.

A condition compiles to one expression over the engine's per-person state arrays, in the
subset of Python that Numba compiles (:mod:`allscene.moments.kernel`,
:mod:`allscene.moments.program`): text values become integer codes of the catalog's string
table, an unknown value is -1 (NaN for numbers), and a comparison with an unknown value is
false. Event predicates inside it (``app_open(app == "didi")``) become *signals*: each is
matched once per event, in Python for a live event (:meth:`Signal.match_one`) or over a whole
Arrow batch (:meth:`Signal.match_many`); a test holds the two to the same answers.

Names a condition may use, besides event kinds and the functions below:

=======================  =====================================================================
``hour``, ``minute``     local time of day (Asia/Shanghai); a scene that reads the minute is
                         checked at every event of the person, others when the hour changes
``weekday``              1 (Monday) .. 7
``mday``, ``month``      day of the month, month
``day``                  ``"workday"`` or ``"restday"`` (weekends and public holidays)
``holiday``              a public holiday
``first_rest_day``       a rest day after a workday: the first day of a weekend or holiday
``place``                ``"home"``, ``"work"``, ``"other"`` or ``"unknown"``: the class of the
                         person's last located place (their own home and work networks, cells)
``place_changed``        the event being processed changed ``place``
``usual_work_end``       the local hour the person usually leaves work (learnt from history)
``hours_past_work_end``  ``hour - usual_work_end``: 0 in the hour they usually leave
``network``              ``"wifi"`` or ``"cellular"``, from the last location ping
``city``                 city code of the last located place
``away``                 the person is in a city other than their home city
``trip_start_day``       ``"workday"`` or ``"restday"``: the day type when they left home city
``weather.temp_c``       weather of the city the person is in (home city when unknown), this
``weather.condition``    hour: temperature, sky (sunny cloudy overcast rain snow fog haze),
``weather.aqi``          air quality index, humidity, change of temperature since the same hour
``weather.humidity``     yesterday, and anomaly against the mean of the same hour over the
``weather.temp_change_24h``  previous seven days
``weather.anomaly``
=======================  =====================================================================

Functions: ``seen(EVENT, DUR)`` an event matched within DUR; ``count(EVENT, DUR)``;
``sum(EVENT.FIELD, DUR)``, ``max(...)``, ``min(...)``; ``last(EVENT.FIELD[, DUR])`` the field
of the latest match; ``in(SCENE)`` the person is in another scene. A bare ``EVENT`` is true
when the event being processed matches it. Unknown values (no weather yet, no match) make a
comparison false.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from allscene.events.schema import BY_KIND, field_specs
from allscene.moments.lang import And, Call, Cmp, LangError, Lit, Match, Name, Not, OneOf, Or, Range
from allscene.moments.names import (
    _GROUP_BITS,
    CITY,
    CONDITIONS,
    DAY_TYPES,
    GROUPS,
    NETWORKS,
    PLACES,
    VARS,
)
from allscene.moments.signals import Signal, tri_state

AGGREGATES = {"count", "sum", "max", "min", "last"}
_RING = "slot[p, {sid}], rt, rv, rhead, rlen"  # a person's window of one series
FUNCTIONS = AGGREGATES | {"seen", "in"}
NUMERIC = {"int", "float"}
_OPS = {"==", "!=", "<", "<=", ">", ">="}


def _fields(kind: str) -> dict[str, Any]:
    return {f.name: f for f in field_specs(BY_KIND[kind]) if f.name != "kind"}


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class Compiled:
    """One condition, compiled: kernel code and what it depends on."""

    code: str
    signals: set[int]
    context: int  # bits of TIME, PLACE, NETWORK, CITY: re-evaluated when they change
    scenes: set[str]
    clock: bool = False  # reads the minute: re-evaluated at every event of the person
    gates: frozenset[int] | None = None  # true only at an event matching one of these signals
    slots: tuple[bool, ...] = (True,) * 48  # can hold at (hour, workday/restday): h + 24*rest
    needs: tuple[tuple[int, int], ...] = ()  # (seen column, window): seen(...) must hold
    in_scenes: tuple[str, ...] = ()  # scenes the person must be in for it to hold
    weather: bool = False  # reads the weather
    tree: Any = None


class Compiler:
    """Compiles the conditions of one catalog; signals and series are shared between scenes.

    ``series`` are (signal id, field) pairs whose values an aggregate needs: the engine keeps
    a short window of them per person.
    """

    def __init__(self, scene_ids: list[str]):
        self.scene_ids = {s: i for i, s in enumerate(scene_ids)}
        # Strings conditions compare with become integer codes; the engine codes the values
        # it keeps (place, network, city, day type, sky) with the same table.
        self.strings: dict[str, int] = {}
        for v in (*PLACES, *DAY_TYPES, *NETWORKS, *CONDITIONS):
            self.code(v)
        self.seen_cols: dict[int, int] = {}  # signal -> column of the last-matched times
        self.signals: list[Signal] = []
        self._sig_keys: dict[str, int] = {}
        self.series: list[tuple[int, str | None]] = []
        self._series_keys: dict[tuple[int, str | None], int] = {}
        self.windows: dict[int, int] = {}  # series id -> longest window used (µs)
        self.text_series: set[int] = set()  # series of text values (kept as codes)

    def code(self, value: str) -> int:
        """The integer code of a string (new strings get the next code)."""
        return self.strings.setdefault(value, len(self.strings))

    def compile(self, text: str) -> Compiled:
        from allscene.moments.lang import parse

        self._text, self._n, self._names = text, 0, set()
        self._deps: Compiled = Compiled("", set(), 0, set())
        tree = parse(text)
        code = self._cond(tree)
        self._deps.code = code
        self._deps.gates = self._gates(tree)
        self._deps.tree = tree
        self._deps.slots = tuple(tri_state(tree, {"hour": h, "day": d}) is not False
                                 for d in DAY_TYPES for h in range(24))
        terms = tree.items if isinstance(tree, And) else (tree,)
        self._deps.needs = tuple((self._seen_col(x.args[0]), x.args[1].value) for x in terms
                                 if isinstance(x, Call) and x.name == "seen")
        self._deps.in_scenes = tuple(x.args[0].parts[0] for x in terms
                                     if isinstance(x, Call) and x.name == "in")
        self._deps.weather = any(v.startswith("weather.") for v in self._names)
        return self._deps

    def _gates(self, node: Any) -> frozenset[int] | None:
        """Signals one of which the event being processed must match for ``node`` to hold."""
        if isinstance(node, Name) and len(node.parts) == 1 and node.parts[0] in BY_KIND \
                and ".".join(node.parts) not in VARS:
            return frozenset({self._signal(node)})
        if isinstance(node, Call) and node.name in BY_KIND and node.name not in FUNCTIONS:
            return frozenset({self._signal(node)})
        if isinstance(node, And):
            for x in node.items:
                g = self._gates(x)
                if g is not None:
                    return g
            return None
        if isinstance(node, Or):
            out: set[int] = set()
            for x in node.items:
                g = self._gates(x)
                if g is None:
                    return None
                out |= g
            return frozenset(out)
        return None

    def _use(self, name: str) -> None:
        self._names.add(name)
        self._deps.context |= _GROUP_BITS[GROUPS.get(name, "time")]
        if name.startswith("weather."):  # the weather of the city the person is in
            self._deps.context |= CITY
        self._deps.clock |= name == "minute"

    # --- errors ------------------------------------------------------------------------------

    def _err(self, node: Any, msg: str) -> LangError:
        pos = getattr(node, "pos", 0)
        return LangError(f"{msg} (column {pos + 1})\n  {self._text}\n  {' ' * pos}^")

    # --- conditions --------------------------------------------------------------------------

    def _cond(self, node: Any) -> str:
        if isinstance(node, Or):
            return "(" + " or ".join(self._cond(x) for x in node.items) + ")"
        if isinstance(node, And):
            return "(" + " and ".join(self._cond(x) for x in node.items) + ")"
        if isinstance(node, Not):
            return f"(not {self._cond(node.item)})"
        if isinstance(node, Lit) and isinstance(node.value, bool):
            return repr(node.value)
        if isinstance(node, Cmp | Range | OneOf):
            return self._compare(node)
        if isinstance(node, Match):
            raise self._err(node, "'~' matches a field of an event: write it inside the event's "
                                  "parentheses, e.g. search(query ~ \"flight\")")
        if isinstance(node, Name):
            name = ".".join(node.parts)
            if name in VARS:
                typ, _, _, code, _ = VARS[name]
                if typ != "bool":
                    raise self._err(node, f"{name} is not yes/no: compare it, e.g. {name} == ...")
                self._use(name)
                return code
            if len(node.parts) == 1 and node.parts[0] in BY_KIND:
                return f"M[r, {self._signal(node)}]"
            raise self._err(node, f"unknown name {name!r}" + _suggest(name, [*VARS, *BY_KIND]))
        if isinstance(node, Call):
            if node.name == "in":
                return self._in_scene(node)
            if node.name == "seen":
                sig, dur = self._args(node, 2)
                window = self._duration(dur)
                return f"(t - last[p, {self._seen_col(sig)}] <= {window})"
            if node.name in AGGREGATES:
                raise self._err(node, f"{node.name}(...) is a number: compare it, e.g. "
                                      f"{node.name}(...) >= 3")
            if node.name in BY_KIND:
                if node.attr:
                    raise self._err(node, f"{node.name}(...).{node.attr} is a value: use it in "
                                          "last(), sum(), max() or min()")
                return f"M[r, {self._signal(node)}]"
            raise self._err(node, f"unknown event kind or function {node.name!r}"
                            + _suggest(node.name, [*FUNCTIONS, *BY_KIND]))
        raise self._err(node, "a value where a condition is expected")

    def _in_scene(self, node: Call) -> str:
        (arg,) = self._args(node, 1)
        if not (isinstance(arg, Name) and len(arg.parts) == 1):
            raise self._err(node, "in() takes a scene id")
        sid = arg.parts[0]
        if sid not in self.scene_ids:
            raise self._err(arg, f"unknown scene {sid!r}" + _suggest(sid, self.scene_ids))
        self._deps.scenes.add(sid)
        return f"(act[p, {self.scene_ids[sid]}] >= 0)"

    def _args(self, node: Call, n: int, optional: int = 0) -> tuple[Any, ...]:
        if not (n <= len(node.args) <= n + optional):
            want = f"{n}" if not optional else f"{n} or {n + optional}"
            raise self._err(node, f"{node.name}() takes {want} arguments, got {len(node.args)}")
        return node.args

    def _duration(self, node: Any) -> int:
        if not (isinstance(node, Lit) and node.duration and node.value > 0):
            raise self._err(node, "expected a duration such as 30m, 2h or 1d")
        return node.value

    def _compare(self, node: Any) -> str:
        item = node.left if isinstance(node, Cmp) else node.item
        code, typ, known, allowed = self._value(item)
        guards = [known] if known else []
        if isinstance(node, Cmp):
            rcode, rtyp, rknown, _ = self._value(node.right)
            self._check_types(node, typ, rtyp, allowed, [node.right])
            if typ == "str" and node.op not in ("==", "!="):
                raise self._err(node, f"text compares with == or !=, not {node.op}")
            if rknown:
                guards.append(rknown)
            expr = f"{code} {node.op} {rcode}"
        elif isinstance(node, Range):
            if typ not in NUMERIC:
                raise self._err(node, f"a range needs a number, not {typ}")
            for b in (node.lo, node.hi):
                if not isinstance(b, Lit) or type(b.value) not in (int, float):
                    raise self._err(b, "range bounds are numbers")
            expr = f"{node.lo.value!r} <= {code} <= {node.hi.value!r}"
        else:
            for v in node.values:
                self._check_types(node, typ, _lit_type(v), allowed, [v])
            expr = "(" + " or ".join(f"{code} == {self._lit(v)}" for v in node.values) + ")"
        return "(" + " and ".join([*guards, expr]) + ")"

    def _lit(self, lit: Lit) -> str:
        return str(self.code(lit.value)) if isinstance(lit.value, str) else repr(lit.value)

    def _check_types(self, node: Any, left: str, right: str, allowed: Any, lits: list) -> None:
        if left in NUMERIC and right in NUMERIC or left == right:
            pass
        else:
            raise self._err(node, f"cannot compare {left} with {right}")
        if allowed:
            for lit in lits:
                if isinstance(lit, Lit) and lit.value not in allowed:
                    raise self._err(lit, f"{lit.value!r} is not one of {', '.join(allowed)}")

    def _value(self, node: Any) -> tuple[str, str, bool, Any]:
        """(code, type, may be unknown, allowed values) of a value."""
        if isinstance(node, Lit):
            return self._lit(node), _lit_type(node), "", None
        if isinstance(node, Name):
            name = ".".join(node.parts)
            if name in VARS:
                typ, allowed, _, code, known = VARS[name]
                self._use(name)
                return code, typ, known, allowed
            raise self._err(node, f"unknown name {name!r}" + _suggest(name, VARS))
        if isinstance(node, Call) and node.name in AGGREGATES:
            if node.name == "count":
                sig, dur = self._args(node, 2)
                sid = self._series(sig, None, self._duration(dur))
                return f"_count({_RING.format(sid=sid)}, t, {dur.value})", "int", "", None
            args = self._args(node, 1, 1) if node.name == "last" else self._args(node, 2)
            sig, fname = self._split_field(args[0])
            spec = _fields(sig[0]).get(fname)
            if spec is None:
                raise self._err(args[0], f"{sig[0]} has no field {fname!r}"
                                + _suggest(fname, _fields(sig[0])))
            if node.name != "last" and spec.type not in NUMERIC:
                raise self._err(args[0], f"{node.name}() needs a number; {fname} is {spec.type}")
            window = self._duration(args[1]) if len(args) > 1 else 0
            sid = self._series(sig[1], fname, window)
            code = f"_{node.name}({_RING.format(sid=sid)}, t, {window})"
            known = "" if node.name == "sum" else f"not np.isnan({code})"
            if spec.type == "str":
                self.text_series.add(sid)
            return code, spec.type, known, spec.choices
        if isinstance(node, Call | Or | And | Not | Cmp | Range | OneOf):
            raise self._err(node, "a condition where a value is expected")
        raise self._err(node, "not a value")

    def _split_field(self, node: Any) -> tuple[tuple[str, Any], str]:
        if isinstance(node, Name) and len(node.parts) == 2:
            return (node.parts[0], Name(node.parts[:1], node.pos)), node.parts[1]
        if isinstance(node, Call) and node.attr:
            return (node.name, Call(node.name, node.args, None, node.pos)), node.attr
        raise self._err(node, "expected EVENT.FIELD, e.g. steps.steps or "
                              "device_state(metric == \"pm25\").value")

    # --- signals -----------------------------------------------------------------------------

    def _seen_col(self, node: Any) -> int:
        """The column of the engine's last-matched times that ``seen(node, ...)`` reads."""
        sig = self._signal(node)
        return self.seen_cols.setdefault(sig, len(self.seen_cols))

    def _series(self, node: Any, fname: str | None, window: int) -> int:
        sig = self._signal(node)
        key = (sig, fname)
        if key not in self._series_keys:
            self._series_keys[key] = len(self.series)
            self.series.append(key)
        sid = self._series_keys[key]
        self.windows[sid] = max(self.windows.get(sid, 0), window)
        return sid

    def _signal(self, node: Any) -> int:
        if isinstance(node, Name) and len(node.parts) == 1:
            kind, filt = node.parts[0], None
        elif isinstance(node, Call) and not node.attr and node.name not in FUNCTIONS:
            kind = node.name
            filt = None if not node.args else (
                node.args[0] if len(node.args) == 1 else And(node.args, node.pos))
        else:
            raise self._err(node, "expected an event, e.g. steps or app_open(app == \"didi\")")
        if kind not in BY_KIND:
            raise self._err(node, f"unknown event kind {kind!r}" + _suggest(kind, BY_KIND))
        if filt is not None:
            self._check_filter(kind, filt)
        key = f"{kind}:{filt!r}" if filt is not None else kind
        key = re.sub(r"pos=\d+", "", key)
        if key not in self._sig_keys:
            self._sig_keys[key] = len(self.signals)
            self.signals.append(Signal(kind, filt, key, len(self.signals)))
        sid = self._sig_keys[key]
        self._deps.signals.add(sid)
        return sid

    def _check_filter(self, kind: str, node: Any) -> None:
        fields = _fields(kind)
        if isinstance(node, And | Or):
            for x in node.items:
                self._check_filter(kind, x)
            return
        if isinstance(node, Not):
            self._check_filter(kind, node.item)
            return
        item = node.left if isinstance(node, Cmp) else getattr(node, "item", node)
        if not (isinstance(item, Name) and len(item.parts) == 1):
            raise self._err(node, f"a filter of {kind} compares one of its fields with a value")
        spec = fields.get(item.parts[0])
        if spec is None:
            raise self._err(item, f"{kind} has no field {item.parts[0]!r}"
                            + _suggest(item.parts[0], fields))
        typ = "str" if spec.type in ("null", "datetime") else spec.type
        if isinstance(node, Name):
            if typ != "bool":
                raise self._err(node, f"{item.parts[0]} is not yes/no: compare it")
            return
        if isinstance(node, Match):
            if typ != "str":
                raise self._err(node, f"'~' needs text; {item.parts[0]} is {typ}")
            try:
                re.compile(node.pattern)
            except re.error as e:
                raise self._err(node, f"bad regular expression: {e}") from None
            return
        lits = [node.right] if isinstance(node, Cmp) else (
            [node.lo, node.hi] if isinstance(node, Range) else list(node.values))
        for lit in lits:
            if not isinstance(lit, Lit):
                raise self._err(lit, "a filter compares a field with a literal value")
            self._check_types(node, typ, _lit_type(lit), spec.choices, [lit])


def _lit_type(lit: Lit) -> str:
    v = lit.value
    return "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else (
        "float" if isinstance(v, float) else "str")

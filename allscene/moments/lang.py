"""The scene condition language: parsed by a real parser into a tree, checked, then compiled.

A scene says when a person enters it (``when``) and, optionally, what takes them out
(``until``). Both are conditions over recent events, time, place and weather::

    app_open(app == "didi") and day == "workday" and hour in 6..10
    seen(heart_rate(bpm >= 135), 20m) and sum(steps.steps, 2h) >= 2500
    in(at_office) and hour >= 19
    tv_watch(genre in {"drama", "variety"}) and place == "home" and hour in 19..21
    last(device_state(metric == "pm25").value, 3h) > 75
    weather.temp_c < 10 and weather.condition in {"rain", "snow"}

Grammar (keywords lower case)::

    expr     := term ("or" term)*
    term     := factor ("and" factor)*
    factor   := "not" factor | compare
    compare  := operand (OP operand | "in" operand ".." operand | "in" "{" lit ("," lit)* "}"
                | "~" STRING)?
    operand  := "(" expr ")" | NUMBER | DURATION | STRING | "true" | "false"
              | NAME ("." NAME)*                           a variable, a field, or an event kind
              | NAME "(" [expr ("," expr)*] ")" ("." NAME)?  a function or an event with filters
    OP       := "==" | "=" | "!=" | ">=" | "<=" | ">" | "<"
    DURATION := NUMBER ("s" | "m" | "h" | "d")             30m, 1.5h, 2d

The tree is plain data (conditions are data). :mod:`allscene.moments.compile` checks it
against the event schema and the scene catalog and turns it into Python and Arrow code.

Examples
--------
>>> parse('app_open(app == "didi") and hour in 6..10')
And(items=(Call(name='app_open', args=(Cmp(op='==', left=Name(parts=('app',), pos=9), right=Lit(value='didi', pos=16), pos=9),), attr=None, pos=0), Range(item=Name(parts=('hour',), pos=28), lo=Lit(value=6, pos=36), hi=Lit(value=10, pos=39), pos=28)), pos=0)
>>> parse("seen(steps, 30m)").args[1]
Lit(value=1800000000, pos=12)
>>> parse("hour in 6..")
Traceback (most recent call last):
...
allscene.moments.lang.LangError: syntax error at column 12: expected a value, got the end
  hour in 6..
             ^
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.exceptions import VisitError

_GRAMMAR = r"""
?start: expr
?expr: term ("or" term)*                       -> or_
?term: factor ("and" factor)*                  -> and_
?factor: "not" factor                          -> not_
       | compare
?compare: operand OP operand                   -> cmp
        | operand "in" operand ".." operand    -> range_
        | operand "in" "{" lit ("," lit)* "}"  -> set_
        | operand "~" STRING                   -> match
        | operand
?operand: "(" expr ")"
        | lit
        | NAME ("." NAME)*                     -> name
        | NAME "(" [expr ("," expr)*] ")" ("." NAME)?  -> call
?lit: NUMBER                                   -> num
    | DURATION                                 -> dur
    | STRING                                   -> str_
    | "true"                                   -> true
    | "false"                                  -> false
OP: "==" | "!=" | ">=" | "<=" | "=" | ">" | "<"
DURATION.2: /-?[0-9]+(\.[0-9]+)?(s|m|h|d)(?![A-Za-z0-9_])/
NUMBER: /-?[0-9]+(\.[0-9]+)?/
STRING: /"[^"\\]*"/
NAME: /[a-z_][a-z0-9_]*/
%import common.WS
%ignore WS
"""

UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


class LangError(ValueError):
    """A condition that does not parse or does not make sense; the message says where."""


@dataclass(frozen=True)
class Or:
    items: tuple[Any, ...]
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple[Any, ...]
    pos: int


@dataclass(frozen=True)
class Not:
    item: Any
    pos: int


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Any
    right: Any
    pos: int


@dataclass(frozen=True)
class Range:
    item: Any
    lo: Any
    hi: Any
    pos: int


@dataclass(frozen=True)
class OneOf:
    item: Any
    values: tuple[Any, ...]
    pos: int


@dataclass(frozen=True)
class Match:
    item: Any
    pattern: str
    pos: int


@dataclass(frozen=True)
class Lit:
    value: Any  # int, float, str or bool; durations are microseconds (int)
    pos: int
    duration: bool = field(default=False, repr=False)  # written with a unit (30m)


@dataclass(frozen=True)
class Name:
    parts: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    attr: str | None
    pos: int


def _pos(x: Any) -> int:
    return x.start_pos if isinstance(x, Token) else x.pos


class _ToTree(Transformer):
    def or_(self, c):
        return c[0] if len(c) == 1 else Or(tuple(c), _pos(c[0]))

    def and_(self, c):
        return c[0] if len(c) == 1 else And(tuple(c), _pos(c[0]))

    def not_(self, c):
        return Not(c[0], _pos(c[0]) - 4)

    def cmp(self, c):
        op = "==" if str(c[1]) == "=" else str(c[1])
        return Cmp(op, c[0], c[2], _pos(c[0]))

    def range_(self, c):
        return Range(c[0], c[1], c[2], _pos(c[0]))

    def set_(self, c):
        return OneOf(c[0], tuple(c[1:]), _pos(c[0]))

    def match(self, c):
        return Match(c[0], str(c[1])[1:-1], _pos(c[0]))

    def name(self, c):
        return Name(tuple(str(x) for x in c), c[0].start_pos)

    def call(self, c):
        name, rest = c[0], c[1:]
        attr = None
        if rest and isinstance(rest[-1], Token) and rest[-1].type == "NAME":
            attr, rest = str(rest[-1]), rest[:-1]
        return Call(str(name), tuple(x for x in rest if x is not None), attr, name.start_pos)

    def num(self, c):
        s = str(c[0])
        return Lit(float(s) if "." in s else int(s), c[0].start_pos)

    def dur(self, c):
        s = str(c[0])
        return Lit(int(round(float(s[:-1]) * UNIT_US[s[-1]])), c[0].start_pos, True)

    def str_(self, c):
        return Lit(str(c[0])[1:-1], c[0].start_pos)

    def true(self, c):
        return Lit(True, 0)

    def false(self, c):
        return Lit(False, 0)


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)
_WHAT = {"NUMBER": "a number", "DURATION": "a duration", "STRING": "a string", "NAME": "a name",
         "OP": "a comparison", "$END": "the end", "LPAR": "(", "RPAR": ")", "COMMA": ","}


def _caret(text: str, col: int) -> str:
    return f"  {text}\n  {' ' * (col - 1)}^"


def parse(text: str) -> Any:
    """The tree of one condition; :class:`LangError` with the column when it does not parse."""
    try:
        return _ToTree().transform(_PARSER.parse(text))
    except UnexpectedEOF:
        col = len(text) + 1
        raise LangError(f"syntax error at column {col}: expected a value, got the end\n"
                        + _caret(text, col)) from None
    except UnexpectedToken as e:
        col = e.column if isinstance(e.column, int) and e.column > 0 else len(text) + 1
        if e.token.type == "$END":
            col, msg = len(text) + 1, "expected a value, got the end"
        else:
            msg = f"unexpected {e.token.value!r}"
        raise LangError(f"syntax error at column {col}: {msg}\n" + _caret(text, col)) from None
    except UnexpectedCharacters as e:
        raise LangError(f"syntax error at column {e.column}: unexpected {text[e.pos_in_stream]!r}"
                        f"\n" + _caret(text, e.column)) from None
    except VisitError as e:  # pragma: no cover - transformer bugs only
        raise LangError(str(e.orig_exc)) from None


def column(text: str, pos: int) -> str:
    """``column N`` of a tree position, for messages."""
    return f"column {pos + 1}"

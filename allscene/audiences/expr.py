"""The audience expression language: parsed by a real parser into a tree of conditions.

Grammar (keywords are lower case; tags are dotted names)::

    expr     := term ("or" term)*
    term     := factor ("and" factor)*
    factor   := "not" factor | "(" expr ")" | cond
    cond     := TAG "in" NUMBER ".." NUMBER            range, inclusive     age in 22..39
              | TAG "in" "{" value ("," value)* "}"    set                  city_tier in {1, 2}
              | TAG OP value                           comparison           gender = "female"
              | TAG OP NUMBER "in" DAYS                frequency in window  intent.car.compact >= 3 in 90d
              | "@" NAME                               another audience     @first_car_buyers
              | TAG                                    a yes/no tag         owns_car
    OP       := "=" | "!=" | ">=" | "<=" | ">" | "<"
    value    := NUMBER | "double-quoted string" | NAME

The tree is plain data (Unomi's "conditions are data"): the bitmap compiler and the
row-by-row reference evaluator both walk it, and a test holds them to the same answers.

Examples
--------
>>> tree = parse("age in 22..39 and income in 6000..19999 and not owns_car "
...              "and intent.car.compact >= 3 in 90d")
>>> tree
And(items=(Range(tag='age', lo=22, hi=39, pos=0), Range(tag='income', lo=6000, hi=19999, pos=18), Not(item=Flag(tag='owns_car', pos=48), pos=44), Freq(tag='intent.car.compact', op='>=', count=3, days=90, pos=61)), pos=0)
>>> parse("age in 22..")
Traceback (most recent call last):
...
allscene.audiences.expr.ExprError: syntax error at column 12: expected a number, got the end
  age in 22..
             ^
"""

from __future__ import annotations

from dataclasses import dataclass

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.exceptions import VisitError

_GRAMMAR = r"""
?start: expr
?expr: term ("or" term)*          -> or_
?term: factor ("and" factor)*     -> and_
?factor: NOT factor               -> not_
       | "(" expr ")"
       | cond
?cond: TAG "in" number ".." number            -> range_
     | TAG "in" "{" value ("," value)* "}"    -> set_
     | TAG OP number "in" DAYS                -> freq
     | TAG OP value                           -> compare
     | "@" TAG                                -> ref
     | TAG                                    -> flag
number: NUM
value: NUM -> num
     | ESCAPED_STRING -> str_
     | TAG -> word
NOT: "not"
OP: ">=" | "<=" | "!=" | "=" | ">" | "<"
DAYS: /[0-9]+d/
TAG: /(?!(and|or|not|in)\b)[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*/
NUM: /-?[0-9]+(\.[0-9]+)?/
%import common.ESCAPED_STRING
%import common.WS
%ignore WS
"""

_EXPECT = {"NUM": "a number", "TAG": "a tag name", "LPAR": "'('", "RPAR": "')'",
           "LBRACE": "'{'", "RBRACE": "'}'", "OP": "a comparison (=, !=, >=, <=, >, <)",
           "DAYS": "a window such as 90d", "ESCAPED_STRING": "a quoted string",
           "NOT": "'not'", "AT": "'@'", "COMMA": "','", "IN": "'in'", "AND": "'and'",
           "OR": "'or'", "__ANON_0": "'..'", "$END": "the end of the expression"}


class ExprError(ValueError):
    """A bad expression, with the column (1-based) where the problem is."""

    def __init__(self, message: str, text: str, pos: int):
        self.column = pos + 1
        super().__init__(f"{message}\n  {text}\n  {' ' * pos}^")


Value = int | float | str


@dataclass(frozen=True)
class Range:
    tag: str
    lo: Value
    hi: Value
    pos: int = 0


@dataclass(frozen=True)
class In:
    tag: str
    values: tuple[Value, ...]
    pos: int = 0


@dataclass(frozen=True)
class Compare:
    tag: str
    op: str
    value: Value
    pos: int = 0


@dataclass(frozen=True)
class Freq:
    """The tag's event count in the last ``days`` days compared with ``count``."""

    tag: str
    op: str
    count: int
    days: int
    pos: int = 0

    @property
    def column(self) -> str:
        """The tag table column holding the count: ``tag@<days>d``."""
        return f"{self.tag}@{self.days}d"


@dataclass(frozen=True)
class Flag:
    tag: str
    pos: int = 0


@dataclass(frozen=True)
class Ref:
    name: str
    pos: int = 0


@dataclass(frozen=True)
class Not:
    item: Node
    pos: int = 0


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]
    pos: int = 0


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]
    pos: int = 0


Node = Range | In | Compare | Freq | Flag | Ref | Not | And | Or


def _num(tok: Token) -> int | float:
    s = str(tok)
    return float(s) if any(c in s for c in ".eE") else int(s)


class _Invalid(Exception):
    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.pos = pos


class _Build(Transformer):
    def number(self, items):
        return _num(items[0])

    def num(self, items):
        return _num(items[0])

    def str_(self, items):
        return str(items[0])[1:-1].replace('\\"', '"')

    def word(self, items):
        return str(items[0])

    def range_(self, items):
        tag, lo, hi = items
        return Range(str(tag), lo, hi, tag.start_pos)

    def set_(self, items):
        tag, *values = items
        return In(str(tag), tuple(values), tag.start_pos)

    def compare(self, items):
        tag, op, value = items
        return Compare(str(tag), str(op), value, tag.start_pos)

    def freq(self, items):
        tag, op, count, days = items
        if not isinstance(count, int):
            raise _Invalid(f"the count of '{tag}' must be a whole number", op.end_pos + 1)
        return Freq(str(tag), str(op), count, int(str(days)[:-1]), tag.start_pos)

    def ref(self, items):
        return Ref(str(items[0]), items[0].start_pos - 1)

    def flag(self, items):
        return Flag(str(items[0]), items[0].start_pos)

    def not_(self, items):
        return Not(items[1], items[0].start_pos)

    def and_(self, items):
        return items[0] if len(items) == 1 else And(tuple(items), _pos(items[0]))

    def or_(self, items):
        return items[0] if len(items) == 1 else Or(tuple(items), _pos(items[0]))


def _pos(node: Node) -> int:
    return node.pos


_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> Node:
    """Parse an audience expression; raises :class:`ExprError` pointing at the problem."""
    try:
        return _Build().transform(_PARSER.parse(text))
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, _Invalid):
            raise ExprError(f"{inner} (column {inner.pos + 1})", text, inner.pos) from None
        raise
    except UnexpectedEOF as exc:
        expected = sorted({_EXPECT.get(e, e) for e in exc.expected})
        raise ExprError(f"syntax error at column {len(text) + 1}: expected "
                        f"{' or '.join(expected)}", text, len(text)) from None
    except UnexpectedToken as exc:
        pos = exc.token.start_pos if exc.token.type != "$END" else len(text)
        expected = sorted({_EXPECT.get(e, e) for e in exc.expected})
        got = "the end" if exc.token.type == "$END" else repr(str(exc.token))
        raise ExprError(f"syntax error at column {pos + 1}: expected "
                        f"{' or '.join(expected)}, got {got}", text, pos) from None
    except UnexpectedCharacters as exc:
        raise ExprError(f"syntax error at column {exc.pos_in_stream + 1}: unexpected "
                        f"{text[exc.pos_in_stream]!r}", text, exc.pos_in_stream) from None


def tags(node: Node) -> list[tuple[str, int]]:
    """Every tag the expression reads, with its position (for checking against a catalog)."""
    if isinstance(node, (And, Or)):
        return [t for item in node.items for t in tags(item)]
    if isinstance(node, Not):
        return tags(node.item)
    if isinstance(node, Ref):
        return []
    if isinstance(node, Freq):
        return [(node.column, node.pos)]
    return [(node.tag, node.pos)]

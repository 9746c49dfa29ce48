"""Creative rules: which creative fits the moment, written in the scene condition language.

A rule reads the request's context: ``hour``, ``weekday``, ``day`` (workday, restday),
``holiday``, ``weather.temp_c``, ``weather.condition``, ``weather.aqi``, ``weather.humidity``,
``device_type``, ``placement``, and ``in(SCENE)`` for a scene the person is in now. An unknown
value (no weather report for the city) makes a comparison false, as in scenes.

Examples
--------
>>> r = parse_rule("weather.temp_c < 10 or in(cold_snap)")
>>> rule_holds(r, {"weather.temp_c": 4.0, "scenes": set()})
True
>>> rule_holds(r, {"weather.temp_c": None, "scenes": {"cold_snap"}})
True
>>> rule_holds(r, {"weather.temp_c": 18.0, "scenes": set()})
False
>>> parse_rule("weather.temperature < 10")
Traceback (most recent call last):
...
allscene.delivery.rules.RuleError: unknown name 'weather.temperature' (did you mean 'weather.temp_c'?)
"""

from __future__ import annotations

import difflib
from typing import Any

from allscene.moments.lang import And, Call, Cmp, LangError, Lit, Name, Not, OneOf, Or, Range, parse
from allscene.moments.signals import tri_state

NAMES = ("hour", "weekday", "day", "holiday", "weather.temp_c", "weather.condition",
         "weather.aqi", "weather.humidity", "device_type", "placement")


class RuleError(ValueError):
    """A creative rule that cannot be read, saying where."""


def parse_rule(text: str, scene_ids: set[str] | None = None) -> Any:
    """Parse and check a rule; ``scene_ids`` (when given) are the scenes ``in()`` may name."""
    try:
        tree = parse(text)
    except LangError as e:
        raise RuleError(str(e)) from None
    _check(tree, scene_ids)
    return tree


def _check(node: Any, scene_ids: set[str] | None) -> None:
    if isinstance(node, And | Or):
        for x in node.items:
            _check(x, scene_ids)
    elif isinstance(node, Not):
        _check(node.item, scene_ids)
    elif isinstance(node, Call):
        if node.name != "in" or len(node.args) != 1 or not isinstance(node.args[0], Name):
            raise RuleError(f"{node.name}(...): a rule reads the request's context; only "
                            "in(SCENE) is a function here")
        sid = ".".join(node.args[0].parts)
        if scene_ids is not None and sid not in scene_ids:
            raise RuleError(f"unknown scene {sid!r}" + _suggest(sid, scene_ids))
    elif isinstance(node, Cmp | Range | OneOf):
        item = node.left if isinstance(node, Cmp) else node.item
        if not isinstance(item, Name):
            raise RuleError("a comparison starts with a name, e.g. weather.temp_c < 10")
        _name(item)
        if isinstance(node, Cmp) and not isinstance(node.right, Lit):
            raise RuleError("a comparison ends with a value, e.g. weather.temp_c < 10")
    elif isinstance(node, Name):
        if _name(node) != "holiday":
            raise RuleError(f"{'.'.join(node.parts)} is not yes/no: compare it")
    elif not (isinstance(node, Lit) and isinstance(node.value, bool)):
        raise RuleError("expected a condition, e.g. weather.temp_c < 10")


def _name(node: Name) -> str:
    name = ".".join(node.parts)
    if name not in NAMES:
        raise RuleError(f"unknown name {name!r}" + _suggest(name, NAMES))
    return name


def _suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def rule_holds(tree: Any, env: dict[str, Any]) -> bool:
    """Does a parsed rule hold in ``env`` (context values by name, ``scenes`` a set)?"""
    if isinstance(tree, And):
        return all(rule_holds(x, env) for x in tree.items)
    if isinstance(tree, Or):
        return any(rule_holds(x, env) for x in tree.items)
    if isinstance(tree, Not):
        return not rule_holds(tree.item, env)
    if isinstance(tree, Call):
        return ".".join(tree.args[0].parts) in env.get("scenes", ())
    if isinstance(tree, Lit):
        return bool(tree.value)
    if isinstance(tree, Name):
        return env.get(".".join(tree.parts)) is True
    return tri_state(tree, {k: env.get(k) for k in NAMES}) is True

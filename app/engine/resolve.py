"""A node's parameters resolved against its layer's declaration (defaults filled in, the
problems found), memoised on their content: the editor re-analyzes on every edit, and most
nodes' parameters did not change. ``freeze``/``thaw`` make hashable keys of parameter values
that keep types apart (True == 1 in Python, not here) and dict order.
"""

from __future__ import annotations

import functools
from typing import Any

from .layers import get_spec
from .layers.spec import LayerSpec
from .params import show


def resolve_params(spec: LayerSpec, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """The node's parameters with defaults filled in, and the problems found:
    unknown names, missing required ones, and values the schema refuses."""
    problems: list[tuple[str | None, str]] = []
    if not isinstance(given, dict):
        return {}, [(None, f"params must be an object; received {show(given)}")]
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in spec.param_index:
            known = ", ".join(spec.param_index) or "none"
            problems.append((name, f"{spec.type} has no parameter {name!r} (it has: {known})"))
    for p in spec.params:
        if p.name in given:
            try:
                resolved[p.name] = p.check(given[p.name])
            except ValueError as e:
                problems.append((p.name, str(e)))
        elif p.required:
            problems.append((p.name, f"{spec.type} needs {p.name} ({p.expected()})"))
        else:
            resolved[p.name] = p.default
    return resolved, problems


def resolve_cached(spec: LayerSpec, given) -> tuple[dict[str, Any], list[tuple[str | None, str]], Any]:
    """``resolve_params`` of a catalogue type, memoised on the parameters' content (the
    editor re-analyzes on every edit, and most nodes' parameters did not change), and the
    key it was looked up by (None: ``given`` cannot be a key, so nothing was memoised).
    Every call gets its own copy of the resolved values."""
    try:
        key = params_key(given)
        resolved, nested, problems = _resolve_key(spec.type, key)
    except (TypeError, RecursionError):  # a value that cannot be a key (unhashable, nested too deep)
        resolved, problems = resolve_params(spec, given)
        return resolved, problems, None
    return (thaw(resolved) if nested else dict(resolved)), list(problems), key


def params_key(given):
    """A hashable key of a node's parameters that keeps types apart (True == 1 in Python,
    not here) and keys' order (the problems are listed in it): a dict of plain values (the
    usual case) as its names, values and their types; anything else ``freeze``'s way.
    Raises ``TypeError`` for a value that cannot be hashed."""
    if type(given) is dict:
        values = tuple(given.values())
        types = tuple(map(type, values))
        if _SCALARS.issuperset(types):
            return _FLAT, tuple(given), values, types
    return freeze(given)


_FLAT = "flat"  # (``freeze`` keys are pairs, these are 4-tuples: the two never meet)


def _given(key):
    """The parameters ``params_key`` made ``key`` of (a fresh copy)."""
    if len(key) == 4:
        return dict(zip(key[1], key[2]))
    return thaw(key)


@functools.lru_cache(maxsize=8192)
def _resolve_key(type_name: str, key) -> tuple[Any, bool, tuple]:
    """The resolved parameters (frozen where they hold lists or dicts, which every caller
    must get a copy of; else as a dict of plain values), whether they do, and the problems."""
    resolved, problems = resolve_params(get_spec(type_name), _given(key))
    nested = any(type(v) not in _SCALARS for v in resolved.values())
    return (freeze(resolved) if nested else resolved), nested, tuple(problems)


_SCALARS = frozenset((str, int, float, bool, type(None)))

def freeze(value):
    """``value`` as a hashable key that keeps types apart (True == 1 in Python, not here)
    and keeps dict order (the problems are listed in it). Raises ``TypeError`` for a value
    that cannot be hashed."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if isinstance(value, dict):
        return dict, tuple([(k, freeze(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return kind, tuple([freeze(v) for v in value])
    hash(value)
    return kind, value


def thaw(frozen):
    """A fresh ``value`` from ``freeze(value)``."""
    kind, content = frozen
    if kind is dict:
        return {k: thaw(v) for k, v in content}
    if kind is list or kind is tuple:
        return kind([thaw(v) for v in content])
    return content


def resolved_by_key(type_name: str, key) -> dict[str, Any]:
    """A fresh copy of the resolved parameters ``resolve_cached`` looked up by ``key``."""
    resolved, nested, _problems = _resolve_key(type_name, key)
    return thaw(resolved) if nested else dict(resolved)

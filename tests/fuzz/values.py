"""Hypothesis strategies shared by the fuzz families: values valid for a parameter schema,
weird values of every JSON type, and text spliced into JSON after encoding.

JSON that ``json.dumps`` cannot write (nesting thousands deep, arrays of a million items,
number literals such as ``1e400``) is put in as a *raw* marker: ``raw(text)`` returns a
string that ``dumps_with_raw`` replaces by ``text`` in the encoded document.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

from app.engine.params import REQUIRED, Param

_RAW = "\x00RAW{}\x00"


class RawTexts:
    """The raw JSON texts of one document, addressed by marker."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def raw(self, text: str) -> str:
        self.texts.append(text)
        return _RAW.format(len(self.texts) - 1)


def dumps_with_raw(obj: Any, raws: RawTexts, ensure_ascii: bool = True, indent: int | None = None) -> str:
    text = json.dumps(obj, ensure_ascii=ensure_ascii, indent=indent, allow_nan=True)
    for i, raw in enumerate(raws.texts):
        text = text.replace(json.dumps(_RAW.format(i), ensure_ascii=ensure_ascii), raw)
    return text


# ----------------------------------------------------------------------------------- weird values
BIG_INTS = [0, 1, -1, 2, 255, 256, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64,
            10**12, 10**18, 10**19, -(10**9), 10**100, 10**400]
ODD_FLOATS = [0.0, -0.0, 0.5, 1e-45, 5e-324, 1e-12, 1e38, 3.5e38, 1e39, 1e300, 1.7976931348623157e308, -1e308,
              float("nan"), float("inf"), float("-inf")]
ODD_TEXT = ["", " ", "\x00", "\udcff", "\ud800x", "e\u0301", "\u202eevil", "\U0001f600", "null", "NaN", "-1",
            "1e999", "$width", "$", "../../etc/passwd", "/proc/self/mem", "C:\\con", "a" * 300, "😀" * 50,
            "\ufeff", "\n\r\t", "forward", "__init__", "class", "Input", "conv1"]
# JSON texts no encoder writes
RAW_NUMBERS = ["1e400", "-1e400", "1" + "0" * 2200, "1" + "0" * 4400, "-0", "0.0000000000000000000001e-400",
               "123456789012345678901234567890.5", "NaN", "Infinity", "-Infinity"]


# any text, lone surrogates, control and combining characters included (st.text leaves surrogates out)
ANY_TEXT = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs"]), max_size=24)
# lone surrogates: JSON's \udcff escapes decode to them; UTF-8 cannot encode them back
SURROGATES = st.sampled_from(["\udcff", "a\udcffb", "\ud83d", "name \udc80", "\udfff\ud800"])
ODD_OR_ANY_TEXT = st.one_of(st.sampled_from(ODD_TEXT), ANY_TEXT, SURROGATES)


@st.composite
def raw_json(draw, raws: RawTexts) -> str:
    """A raw marker for a deeply nested value, a huge array or an odd number literal."""
    kind = draw(st.sampled_from(["deep_list", "deep_dict", "huge_array", "huge_string", "number", "long_shape"]))
    if kind == "deep_list":
        n = draw(st.sampled_from([50, 500, 1000, 5000, 100_000]))
        return raws.raw("[" * n + "1" + "]" * n)
    if kind == "deep_dict":
        n = draw(st.sampled_from([50, 1000, 20_000]))
        return raws.raw('{"a":' * n + "1" + "}" * n)
    if kind == "huge_array":
        n = draw(st.sampled_from([10_000, 100_000, 1_000_000]))
        item = draw(st.sampled_from(["1", "0", "-1", "7.5", '"x"', "null", "[]"]))
        return raws.raw("[" + ",".join([item] * n) + "]")
    if kind == "huge_string":
        n = draw(st.sampled_from([10_000, 1_000_000]))
        return raws.raw('"' + "x" * n + '"')
    if kind == "long_shape":
        n = draw(st.sampled_from([9, 64, 1000, 100_000]))
        d = draw(st.sampled_from(["1", "2", "3"]))
        return raws.raw("[" + ",".join([d] * n) + "]")
    return raws.raw(draw(st.sampled_from(RAW_NUMBERS)))


def weird_values(raws: RawTexts) -> st.SearchStrategy:
    """Values of every JSON type, biased towards edges: huge, negative, non-finite, odd text."""
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.sampled_from(BIG_INTS), st.integers(-(2**70), 2**70), st.integers(-3, 40),
        st.sampled_from(ODD_FLOATS), st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(ODD_TEXT), ANY_TEXT,
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=5),
        st.dictionaries(st.sampled_from(ODD_TEXT[:12] + ["shape", "id", "type", "params"]), scalars, max_size=3),
        raw_json(raws),
    )


# ----------------------------------------------------------------------------------- valid values
def _bounds(p: Param, lo_default: float, hi_default: float) -> tuple[float, float]:
    lo = p.minimum if p.minimum is not None else lo_default
    hi = p.maximum if p.maximum is not None else hi_default
    return lo, max(lo, hi)


def valid_value(p: Param) -> st.SearchStrategy:
    """A value the parameter ``p`` accepts, kept small enough that shapes stay small."""
    kind = p.kind
    if kind == "int":
        lo, hi = _bounds(p, 0, 64)
        lo, hi = int(math.ceil(lo)), int(min(hi, max(lo, 0) + 64))
        s = st.integers(lo, hi)
    elif kind == "float":
        lo, hi = _bounds(p, -10.0, 10.0)
        hi = min(hi, lo + 10.0) if p.maximum is None else hi
        s = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    elif kind == "bool":
        s = st.booleans()
    elif kind == "choice":
        s = st.sampled_from(p.choices) if p.choices else st.none()
    elif kind in ("int_or_pair", "padding"):
        lo, _ = _bounds(p, 0, 8)
        one = st.integers(int(lo), int(lo) + 4)
        s = st.one_of(one, st.lists(one, min_size=2, max_size=2))
        if kind == "padding":
            s = st.one_of(s, st.just("same"))
    elif kind == "shape":
        s = st.lists(st.integers(1, 12), min_size=1, max_size=3)
        if p.allow_minus_one:
            s = st.one_of(s, st.lists(st.integers(1, 12), min_size=0, max_size=2).map(lambda xs: xs + [-1]))
    elif kind == "scale":
        lo, hi = _bounds(p, 0.5, 4.0)
        one = st.one_of(st.integers(max(1, int(math.ceil(lo))), 4), st.floats(max(lo, 0.5), min(hi, 4.0)))
        s = st.one_of(one, st.lists(one, min_size=2, max_size=2))
    elif kind == "string":
        s = st.text(min_size=1, max_size=12)
    elif kind == "column":
        s = st.one_of(st.integers(0, 5), st.text(max_size=8))
    else:
        s = st.none()
    if p.nullable:
        s = st.one_of(st.none(), s)
    return s


EDGE_INTS = [0, -1, 10**6, 10**9, 10**12, 2**31, 2**62, 2**63, 2**64, 10**100, 10**2200]
EDGE_FLOATS = [1e38, 3.4028235e38, 1e39, 1e300, 1.7976931348623157e308, -1e308, 5e-324, 1e-300]


def edge_value(p: Param) -> st.SearchStrategy:
    """A value at or past the edges of what ``p`` accepts: its bounds and one beyond, and
    numbers torch or a C int cannot hold."""
    ints = list(EDGE_INTS)
    floats = list(EDGE_FLOATS)
    for bound in (p.minimum, p.maximum):
        if bound is not None:
            floats += [float(bound), float(bound) * (1 + 1e-9) + 1e-300, float(bound) - 1e-9]
            if float(bound).is_integer():
                ints += [int(bound), int(bound) - 1, int(bound) + 1]
    number = st.one_of(st.sampled_from(ints), st.sampled_from(floats))
    if p.kind in ("int_or_pair", "padding", "scale", "shape"):
        return st.one_of(number, st.lists(number, min_size=1, max_size=3),
                         st.lists(st.sampled_from([1, 2, 3]), min_size=9, max_size=200))
    return number


@st.composite
def params_for(draw, fields: tuple[Param, ...], keep: float = 0.5, edge: float = 0.1) -> dict[str, Any]:
    """A dict of values: every required parameter, and each optional one or not; most
    values valid, a share ``edge`` at or past the edges of the parameter's range."""
    out = {}
    for p in fields:
        if p.default is REQUIRED or draw(st.integers(0, 99)) < keep * 100:
            at_edge = draw(st.integers(0, 999)) < edge * 1000
            out[p.name] = draw(edge_value(p) if at_edge else valid_value(p))
    return out

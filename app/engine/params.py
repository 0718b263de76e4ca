"""Parameter schemas: what a layer parameter accepts, its default, range and doc.

The palette, the inspector form, validation, the file format and the compiler all read
these declarations. ``Param.check(value)`` returns the value as stored (unchanged when
valid) or raises ``ValueError`` with a message that says what was received and expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # default of a parameter the user must give

KINDS = ("int", "float", "bool", "choice", "int_or_pair", "padding", "shape", "scale", "string", "column")


def show(value: Any) -> str:
    """How a received value is quoted in messages: as JSON, the way the file spells it."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        pass
    try:
        return repr(value)
    except ValueError:  # an integer with more digits than Python will print
        return f"a {type(value).__name__} too large to print"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a finite float: NaN and infinities are refused (JSON has neither)."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class Param:
    """One parameter of a layer type.

    kind: ``int``, ``float``, ``bool``, ``choice`` (one of ``choices``), ``int_or_pair``
    (an int or ``[a, b]``), ``padding`` (int-or-pair or ``"same"``), ``shape`` (a list of
    ints, ``-1`` allowed once when ``allow_minus_one``), ``scale`` (a number or ``[a, b]``).
    ``nullable`` lets ``null`` through (e.g. pooling stride: null means kernel_size).
    """

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    nullable: bool = False
    allow_minus_one: bool = False
    key: bool = False  # shown on the node face as a key parameter

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        """A phrase naming what the parameter accepts, for messages and tooltips."""
        rng = self._range_text()
        text = {
            "int": f"an integer{rng}",
            "float": f"a number{rng}",
            "bool": "true or false",
            "choice": "one of " + ", ".join(show(c) for c in self.choices),
            "int_or_pair": f"an integer{rng} or a list of two such integers",
            "padding": f"an integer{rng}, a list of two such integers, or \"same\"",
            "shape": "a non-empty list of positive integers"
            + (" (one may be -1)" if self.allow_minus_one else ""),
            "scale": f"a number{rng} or a list of two such numbers",
            "string": "a non-empty string",
            "column": "a column name (string) or a column index (integer >= 0)",
        }[self.kind]
        return text + (" or null" if self.nullable else "")

    def _range_text(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f" from {_num(self.minimum)} to {_num(self.maximum)}"
        if self.minimum is not None:
            return f" >= {_num(self.minimum)}"
        if self.maximum is not None:
            return f" <= {_num(self.maximum)}"
        return ""

    def check(self, value: Any) -> Any:
        """Return ``value`` if this parameter accepts it, else raise ``ValueError``."""
        if value is None and self.nullable:
            return None
        ok = {
            "int": lambda v: is_int(v) and self._in_range(v),
            "float": lambda v: is_number(v) and self._in_range(v),
            "bool": lambda v: isinstance(v, bool),
            "choice": lambda v: isinstance(v, str) and v in self.choices,
            "int_or_pair": self._int_or_pair,
            "padding": lambda v: v == "same" or self._int_or_pair(v),
            "shape": self._shape,
            "scale": self._scale,
            "string": lambda v: isinstance(v, str) and v != "",
            "column": lambda v: (isinstance(v, str) and v != "") or (is_int(v) and v >= 0),
        }[self.kind](value)
        if not ok:
            raise ValueError(f"expected {self.expected()}, received {show(value)}")
        return value

    def _in_range(self, v: float) -> bool:
        return (self.minimum is None or v >= self.minimum) and (
            self.maximum is None or v <= self.maximum
        )

    def _int_or_pair(self, v: Any) -> bool:
        if is_int(v):
            return self._in_range(v)
        return (
            isinstance(v, list)
            and len(v) == 2
            and all(is_int(x) and self._in_range(x) for x in v)
        )

    def _shape(self, v: Any) -> bool:
        if not isinstance(v, list) or not v or not all(is_int(x) for x in v):
            return False
        negatives = [x for x in v if x < 1]
        if not negatives:
            return True
        return self.allow_minus_one and negatives == [-1]

    def _scale(self, v: Any) -> bool:
        if is_number(v):
            return self._in_range(v)
        return (
            isinstance(v, list) and len(v) == 2 and all(is_number(x) and self._in_range(x) for x in v)
        )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def pair(value: int | list[int]) -> tuple[int, int]:
    """An int-or-pair parameter as a ``(height, width)`` tuple."""
    if isinstance(value, list):
        return int(value[0]), int(value[1])
    return int(value), int(value)

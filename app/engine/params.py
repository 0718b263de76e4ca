"""Parameter schemas: what a layer parameter accepts, its default, range and doc.

The palette, the inspector form, validation, the file format and the compiler all read
these declarations. ``Param.check(value)`` returns the value as stored (unchanged when
valid) or raises ``ValueError`` with a message that says what was received and expected.

Whatever a parameter declares, its values stay within what torch can hold: integers within
``INT_LIMIT`` (a C int: what a size, a seed or a spin box takes; int64 holds it with room
for products), numbers within ``FLOAT_LIMIT`` (inside float32's range), shapes of at most
``MAX_RANK`` dimensions of at most ``INT_LIMIT`` each.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # default of a parameter the user must give

INT_LIMIT = 2**31 - 1  # largest integer any parameter takes (sizes, seeds, counts)
FLOAT_LIMIT = 3.4e38  # largest magnitude of a number (float32 holds up to ~3.4028e38)
MAX_RANK = 8  # most dimensions of a shape (one sample, without the batch)
INT64_MAX = 2**63 - 1  # torch's sizes and element counts are int64
SHOW_LIMIT = 120  # characters of a received value quoted in a message

KINDS = ("int", "float", "bool", "choice", "int_or_pair", "padding", "shape", "scale", "string", "column")


def show(value: Any) -> str:
    """How a received value is quoted in messages: as JSON, the way the file spells it;
    a huge integer by its number of digits, and a long text cut short."""
    if is_int(value) and value.bit_length() > 100:
        return f"an integer of about {digits(value)} digits"
    text = _show(value)
    if len(text) > SHOW_LIMIT:
        kind = {list: "a list", dict: "an object", str: "a string"}.get(type(value), "a value")
        size = f" of {len(value)} items" if isinstance(value, (list, dict)) else ""
        return f"{text[:SHOW_LIMIT // 2]}... ({kind}{size}, {len(text)} characters)"
    return text


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(value)
    except (ValueError, RecursionError):  # an integer with more digits than Python will print
        return f"a {type(value).__name__} too large to print"


def digits(n: int) -> int:
    """About how many decimal digits ``n`` has, without converting it to text (Python
    refuses to print integers of more than 4,300 digits, and takes long to print big ones)."""
    return max(1, int(abs(n).bit_length() * 0.30103) + 1)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a finite float: NaN and infinities are refused (JSON has neither)."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


_INT_KINDS = ("int", "int_or_pair", "padding", "shape", "column")


@dataclass(frozen=True)
class Param:
    """One parameter of a layer type.

    kind: ``int``, ``float``, ``bool``, ``choice`` (one of ``choices``), ``int_or_pair``
    (an int or ``[a, b]``), ``padding`` (int-or-pair or ``"same"``), ``shape`` (a list of
    ints, ``-1`` allowed once when ``allow_minus_one``), ``scale`` (a number or ``[a, b]``),
    ``any`` (a block's parameter: any value the layers inside the block accept).
    ``nullable`` lets ``null`` through (e.g. pooling stride: null means kernel_size).
    ``minimum`` and ``maximum`` narrow the kind's own limits (``INT_LIMIT``, ``FLOAT_LIMIT``),
    never widen them. ``label``: the name a form shows, when the file's key says too little.
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
    label: str = ""
    wide: bool = False  # an integer as wide as int64 (seeds: torch and numpy take 64 bits)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def title(self) -> str:
        """What a form calls the parameter: its label, or its name with spaces."""
        return self.label or self.name.replace("_", " ")

    @property
    def limit(self) -> float:
        """The largest magnitude any value of this kind may have, whatever is declared."""
        if self.kind in _INT_KINDS:
            return INT64_MAX if self.wide else INT_LIMIT
        return FLOAT_LIMIT

    @property
    def low(self) -> float:
        """The smallest value accepted (the declared minimum within the kind's limit)."""
        return -self.limit if self.minimum is None else max(self.minimum, -self.limit)

    @property
    def high(self) -> float:
        """The largest value accepted (the declared maximum within the kind's limit)."""
        return self.limit if self.maximum is None else min(self.maximum, self.limit)

    def expected(self, full: bool = False) -> str:
        """A phrase naming what the parameter accepts, for messages and tooltips. The
        kind's own limits are named when ``full`` (they matter only to huge values)."""
        rng = self._range_text(full)
        if full:
            shape = f"a list of 1 to {MAX_RANK} positive integers up to {_num(INT_LIMIT)}"
            index = f"integer from 0 to {_num(self.high)}"
        else:
            shape, index = "a non-empty list of positive integers", "integer >= 0"
        text = {
            "int": f"an integer{rng}",
            "float": f"a number{rng}",
            "bool": "true or false",
            "choice": "one of " + ", ".join(show(c) for c in self.choices),
            "int_or_pair": f"an integer{rng} or a list of two such integers",
            "padding": f"an integer{rng}, a list of two such integers, or \"same\"",
            "shape": shape + (" (one may be -1)" if self.allow_minus_one else ""),
            "scale": f"a number{rng} or a list of two such numbers",
            "string": "a non-empty string",
            "column": f"a column name (string) or a column index ({index})",
            "any": "any JSON value",
        }[self.kind]
        return text + (" or null" if self.nullable else "")

    def _range_text(self, full: bool) -> str:
        low = self.low if full else self.minimum
        high = self.high if full else self.maximum
        if low is not None and high is not None:
            return f" from {_num(low)} to {_num(high)}"
        if low is not None:
            return f" >= {_num(low)}"
        if high is not None:
            return f" <= {_num(high)}"
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
            "column": lambda v: (isinstance(v, str) and v != "") or (is_int(v) and 0 <= v <= self.high),
            "any": lambda v: True,  # a block's parameter: what its inner layers accept decides
        }[self.kind](value)
        if not ok:
            full = self._beyond_limits(value)
            raise ValueError(f"expected {self.expected(full)}, received {show(value)}")
        return value

    def _beyond_limits(self, value: Any) -> bool:
        """Whether ``value`` breaks the kind's own limits (not only the declared range)."""
        items = value if isinstance(value, list) else [value]
        if self.kind == "shape" and len(items) > MAX_RANK:
            return True
        return any(is_number(x) and abs(x) > self.limit for x in items)

    def _in_range(self, v: float) -> bool:
        return self.low <= v <= self.high

    def _int_or_pair(self, v: Any) -> bool:
        if is_int(v):
            return self._in_range(v)
        return (
            isinstance(v, list)
            and len(v) == 2
            and all(is_int(x) and self._in_range(x) for x in v)
        )

    def _shape(self, v: Any) -> bool:
        if not isinstance(v, list) or not 0 < len(v) <= MAX_RANK or not all(is_int(x) for x in v):
            return False
        if any(x > INT_LIMIT for x in v):
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
    """A range bound as a message spells it: ``1``, ``0.99``, ``2147483647``, ``3.4e+38``."""
    if isinstance(x, int) and abs(x) <= INT64_MAX:
        return str(x)
    if abs(x) >= 1e16:
        return repr(float(x))
    return str(int(x)) if float(x).is_integer() else str(x)


def pair(value: int | list[int]) -> tuple[int, int]:
    """An int-or-pair parameter as a ``(height, width)`` tuple."""
    if isinstance(value, list):
        return int(value[0]), int(value[1])
    return int(value), int(value)

"""Parameter schemas (app/engine/params.py): what each kind accepts and refuses, and the
messages that say what was expected and what was received."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.params import (FLOAT_LIMIT, INT_LIMIT, KINDS, REQUIRED, Param, is_int, is_number, pair,
                               show)

INT = Param("n", "int", 1, "an int", minimum=1, maximum=10)
FLOAT = Param("x", "float", 0.5, "a float", 0.0, 1.0)
OPEN_FLOAT = Param("y", "float", 0.0, "an unbounded float")
BOOL = Param("b", "bool", True, "a bool")
CHOICE = Param("c", "choice", "a", "a choice", choices=("a", "b"))
PAIR = Param("k", "int_or_pair", 1, "int or pair", minimum=1)
PADDING = Param("pad", "padding", 0, "padding", minimum=0)
SHAPE = Param("shape", "shape", doc="a shape")
SHAPE_M1 = Param("shape", "shape", doc="a shape", allow_minus_one=True)
SCALE = Param("s", "scale", 2, "a scale", minimum=0.01)
STRING = Param("name", "string", "x", "a string")
COLUMN = Param("col", "column", None, "a column", nullable=True)
NULLABLE_PAIR = Param("stride", "int_or_pair", None, "stride", minimum=1, nullable=True)


def accepts(param: Param, value) -> bool:
    try:
        returned = param.check(value)
    except ValueError:
        return False
    assert returned == value or (returned is None and value is None)
    return True


@pytest.mark.parametrize(
    "param, good, bad",
    [
        (INT, [1, 5, 10], [0, 11, -1, True, False, 2.0, 1.5, "3", None, [1], float("nan")]),
        (FLOAT, [0, 0.0, 0.25, 1, 1.0], [-0.1, 1.01, True, "0.5", None, float("nan"),
                                         float("inf"), [0.5]]),
        (OPEN_FLOAT, [-1e30, 0, 1e30, -3], [float("nan"), float("inf"), float("-inf"), False]),
        (BOOL, [True, False], [0, 1, "true", None, 1.0]),
        (CHOICE, ["a", "b"], ["A", "c", "", None, 0, ["a"]]),
        (PAIR, [1, 7, [1, 2], [3, 3]], [0, [0, 1], [1], [1, 2, 3], [1.0, 2], [True, 2], (1, 2),
                                        "3", 2.0, True, None, []]),
        (PADDING, [0, 3, [0, 1], "same"], ["valid", "SAME", -1, [-1, 0], [1, 2, 3], 1.0, None,
                                            True]),
        (SHAPE, [[1], [1, 28, 28], [3, 1]], [[], [0], [-1, 4], [1, -2], [1.0], [True], "1",
                                             1, None, (1, 2), [[1]]]),
        (SHAPE_M1, [[-1], [4, -1], [-1, 2, 2], [1, 28, 28]], [[-1, -1], [0, 4], [-2, 4], [],
                                                               [-1.0]]),
        (SCALE, [2, 0.5, 1.5, [2, 3], [0.5, 2.0]], [0, 0.001, [0, 1], [1, 2, 3], [2], True, "2",
                                                    [True, 2], float("nan"), float("inf"),
                                                    [2, float("nan")]]),
        (STRING, ["x", "a b", "ü"], ["", None, 1, ["x"]]),
        (COLUMN, [None, "label", 0, 7], ["", -1, 1.0, True, [0]]),
        (NULLABLE_PAIR, [None, 1, [2, 2]], [0, [0, 2], "none"]),
    ],
    ids=lambda v: f"{v.name}:{v.kind}" if isinstance(v, Param) else None,
)
def test_check_accepts_and_refuses(param, good, bad):
    for value in good:
        assert accepts(param, value), f"{param.kind} should accept {value!r}"
    for value in bad:
        assert not accepts(param, value), f"{param.kind} should refuse {value!r}"


def test_bools_are_not_ints_anywhere():
    for param in (INT, PAIR, PADDING, SHAPE, COLUMN):
        for value in (True, False, [True, 1], [1, False]):
            assert not accepts(param, value), (param.kind, value)


def test_two_point_zero_is_not_an_int():
    assert not accepts(INT, 2.0)
    assert not accepts(PAIR, [2.0, 2])
    assert not accepts(SHAPE, [2.0])


def test_nan_and_infinities_are_refused_as_numbers():
    for value in (float("nan"), float("inf"), float("-inf")):
        assert not is_number(value)
        assert not accepts(OPEN_FLOAT, value)
        assert not accepts(SCALE, [1.0, value])
    assert is_number(3) and is_number(-2.5) and is_number(10**40)
    assert not is_number(True) and not is_number("1") and not is_number(None)


def test_is_int():
    assert is_int(0) and is_int(-5) and is_int(10**30)
    assert not is_int(True) and not is_int(1.0) and not is_int("1") and not is_int(None)


def test_shape_allows_minus_one_only_once_and_only_when_declared():
    assert not accepts(SHAPE, [-1])
    assert accepts(SHAPE_M1, [-1])
    assert not accepts(SHAPE_M1, [-1, -1])
    assert not accepts(SHAPE_M1, [-1, 0])


def test_nullable():
    assert NULLABLE_PAIR.check(None) is None
    assert COLUMN.check(None) is None
    with pytest.raises(ValueError, match="received null"):
        PAIR.check(None)
    assert NULLABLE_PAIR.expected().endswith(" or null")
    assert not PAIR.expected().endswith(" or null")


@pytest.mark.parametrize(
    "param, value, expected, received",
    [
        (INT, True, "an integer from 1 to 10", "true"),
        (INT, 2.0, "an integer from 1 to 10", "2.0"),
        (INT, 11, "an integer from 1 to 10", "11"),
        (FLOAT, "0.5", "a number from 0 to 1", '"0.5"'),
        (FLOAT, float("nan"), "a number from 0 to 1", "NaN"),
        (BOOL, 1, "true or false", "1"),
        (CHOICE, "c", 'one of "a", "b"', '"c"'),
        (PAIR, [1, 2, 3], "an integer >= 1 or a list of two such integers", "[1, 2, 3]"),
        (PADDING, "valid", 'an integer >= 0, a list of two such integers, or "same"', '"valid"'),
        (SHAPE, [0], "a non-empty list of positive integers", "[0]"),
        (SHAPE_M1, [-1, -1], "a non-empty list of positive integers (one may be -1)", "[-1, -1]"),
        (SCALE, [1], "a number >= 0.01 or a list of two such numbers", "[1]"),
        (STRING, "", "a non-empty string", '""'),
        (COLUMN, -1, "a column name (string) or a column index (integer >= 0)", "-1"),
    ],
)
def test_messages_say_expected_and_received(param, value, expected, received):
    with pytest.raises(ValueError) as info:
        param.check(value)
    message = str(info.value)
    null = " or null" if param.nullable else ""
    assert message == f"expected {expected}{null}, received {received}"


def test_expected_ranges():
    assert Param("a", "int", 0, "d", minimum=1).expected() == "an integer >= 1"
    assert Param("a", "int", 0, "d", maximum=5).expected() == "an integer <= 5"
    assert Param("a", "int", 0, "d").expected() == "an integer"
    assert Param("a", "float", 0, "d", minimum=1e-12).expected() == "a number >= 1e-12"
    assert Param("a", "float", 0, "d", 0.0, 0.99).expected() == "a number from 0 to 0.99"


def test_every_kind_has_an_expected_phrase():
    for kind in KINDS:
        param = Param("p", kind, None, "doc", choices=("x",))
        assert param.expected()


def test_required():
    assert Param("p", "int").required
    assert Param("p", "int").default is REQUIRED
    assert not Param("p", "int", None, nullable=True).required
    assert not INT.required


def test_show_quotes_values_as_json():
    assert show(None) == "null"
    assert show(True) == "true"
    assert show("x") == '"x"'
    assert show([1, "a"]) == '[1, "a"]'
    assert show(float("nan")) == "NaN"
    assert show({1, 2}) == repr({1, 2})  # not JSON: falls back to repr
    assert show(10**5000) == "an integer of about 5001 digits"  # more than Python prints
    assert show(-(10**40)) == "an integer of about 41 digits"
    assert show(2**63) == "9223372036854775808"  # still spelled out


def test_show_cuts_long_values_short():
    text = show([2] * 10**6)
    assert len(text) < 200 and text.startswith("[2, 2") and "a list of 1000000 items" in text
    assert len(show("x" * 10**5)) < 200
    deep: list = []
    for _ in range(10**5):
        deep = [deep]
    assert show(deep)  # nested deeper than json and repr go: no RecursionError


def test_pair():
    assert pair(3) == (3, 3)
    assert pair([2, 5]) == (2, 5)


def test_huge_numbers_are_refused_with_the_range_torch_can_hold():
    """Whatever a parameter declares, numbers stay within float32 and integers within a C
    int (issue 14, item 12: ELU alpha 1e39, a stride of 2^63 were accepted)."""
    p = Param("p", "float", 1.0, "d", minimum=0.0)
    assert accepts(p, 3.4e38) and accepts(p, 10**38)
    for value in (1e39, 1e300, 10**400, 2**128):
        with pytest.raises(ValueError, match=r"expected a number from 0 to 3\.4e\+38, received"):
            p.check(value)
    assert not accepts(OPEN_FLOAT, -1e39)
    assert "received an integer of about 401 digits" in message(p, 10**400)
    for param in (INT, PAIR, PADDING, NULLABLE_PAIR, COLUMN):
        for value in (2**31, 2**63, 10**2200, [1, 2**63], -(2**63)):
            assert not accepts(param, value), (param.kind, value)
    assert accepts(PAIR, 2**31 - 1) and accepts(COLUMN, 2**31 - 1)
    assert message(PAIR, 2**63) == ("expected an integer from 1 to 2147483647 or a list of two such "
                                    "integers, received 9223372036854775808")
    assert message(COLUMN, 2**31) == ("expected a column name (string) or a column index (integer "
                                      "from 0 to 2147483647) or null, received 2147483648")
    # the plain phrase, without the kind's limits, for values that are merely out of range
    assert message(PAIR, 0) == "expected an integer >= 1 or a list of two such integers, received 0"


def test_shapes_have_at_most_8_dimensions_of_a_c_int_each():
    assert accepts(SHAPE, [2**31 - 1] * 8) and accepts(SHAPE_M1, [-1] + [1] * 7)
    for value in ([1] * 9, [2] * 10**6, [2**31], [1, 10**2200], [-1] + [1] * 8):
        assert not accepts(SHAPE, value) and not accepts(SHAPE_M1, value)
    text = message(SHAPE, [10**2200, 2])
    assert text == ("expected a list of 1 to 8 positive integers up to 2147483647, "
                    "received [" + "1" + "0" * 58 + "... (a list of 2 items, 2206 characters)")
    assert "a list of 1000000 items" in message(SHAPE, [2] * 10**6)


def message(param: Param, value) -> str:
    with pytest.raises(ValueError) as info:
        param.check(value)
    return str(info.value)


def test_limits_and_their_phrases():
    assert (INT.low, INT.high) == (1, 10)
    assert (PAIR.low, PAIR.high) == (1, INT_LIMIT)
    assert (OPEN_FLOAT.low, OPEN_FLOAT.high) == (-FLOAT_LIMIT, FLOAT_LIMIT)
    assert Param("a", "int", 0, "d", 0, 2**40).high == INT_LIMIT  # declared ranges only narrow
    assert PAIR.expected(full=True) == "an integer from 1 to 2147483647 or a list of two such integers"
    assert OPEN_FLOAT.expected(full=True) == "a number from -3.4e+38 to 3.4e+38"
    assert np.isfinite(np.float32(FLOAT_LIMIT)) and np.float32(FLOAT_LIMIT) == np.float32(3.4e38)


def test_title_is_the_label_or_the_name():
    assert Param("seed", "int", 0, label="data split seed").title == "data split seed"
    assert Param("start_dim", "int", 1).title == "start dim"

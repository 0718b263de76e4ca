"""Every fuzz family: no input may end in an escape (an exception that is not the engine's
own error, a warning) or a hang. See conftest.py for the CI and ``--fuzz`` profiles, and
bench/fuzz.py for the same families outside pytest."""

from __future__ import annotations

import time
import warnings

import pytest
from hypothesis import strategies as st

from app.engine.errors import DatasetError

from .families import Family, check_family, families
from .harness import Clean, Tally, run_case


def test_family(family_name, fuzz_cases, tally):
    cases, same_each_time = fuzz_cases
    check_family(families()[family_name], cases, same_each_time, tally)


# ------------------------------------------------------------------------ the harness itself
def test_outcomes_are_classified():
    def runner(case):
        kind = case
        if kind == "ok":
            return "ok"
        if kind == "ours":
            raise DatasetError("a clean refusal", where="file.idx")
        if kind == "exit":
            raise Clean("exit 2")
        if kind == "key":
            return {}["missing"]
        if kind == "warning":
            warnings.warn("odd input", RuntimeWarning, stacklevel=1)
            return "ok"
        if kind == "swallowed":
            try:
                time.sleep(3)
            except Exception:  # code under test that catches everything must not hide a hang
                return "ok"
        raise AssertionError(kind)

    assert run_case(runner, "ok").kind == "ok"
    assert run_case(runner, "ours").kind == "clean"
    assert run_case(runner, "exit").kind == "clean"
    escape = run_case(runner, "key")
    assert (escape.kind, escape.error, escape.message) == ("escape", "KeyError", "'missing'")
    assert "test_fuzz.py" in escape.where and escape.case == "'key'"
    assert run_case(runner, "warning").kind == "escape"
    start = time.perf_counter()
    hang = run_case(runner, "swallowed", seconds=0.3)
    assert hang.kind == "hang" and time.perf_counter() - start < 2


def test_an_escape_or_a_hang_fails_the_family_test():
    def runner(n):
        if n >= 3:
            raise IndexError(f"index {n} out of range")
        return "ok"

    family = Family("fake", lambda: st.integers(0, 10), runner, repr, 20, 20)
    tally = Tally()
    with pytest.raises(pytest.fail.Exception, match=r"ESCAPE: IndexError: index 3 out of range"):
        check_family(family, 20, True, tally)  # shrunk to the smallest failing input, 3
    assert tally.counts["fake"]["escape"] == 1

    def sleeper(n):
        time.sleep(10)

    slow = Family("slow", lambda: st.just(0), sleeper, repr, 1, 1, seconds=0.2)
    with pytest.raises(pytest.fail.Exception, match="HANG"):
        check_family(slow, 1, True, Tally())

"""The fuzz suite's two profiles.

Plain ``pytest`` runs a few cases of each family, the same ones every time (derandomized),
in well under a minute. ``pytest tests/fuzz --fuzz`` (or ``NETCANVAS_FUZZ=1 pytest
tests/fuzz``) runs the full profile, at least 20,000 cases, new ones each time, and prints
a table of outcomes. ``python bench/fuzz.py`` runs the same families outside pytest, with
a watchdog for cases stuck in C code, and prints the same table.
"""

from __future__ import annotations

import os

import pytest

from .harness import Tally

TALLY = Tally()


def pytest_addoption(parser):
    try:
        parser.addoption("--fuzz", action="store_true", default=False,
                         help="run the full fuzz profile (21,000 cases; a few minutes)")
    except ValueError:  # already registered (by tests/conftest.py, so that `pytest --fuzz` works from the root)
        pass


def fuzz_profile(config) -> bool:
    """True under ``--fuzz`` or with ``NETCANVAS_FUZZ`` set to anything but "" or "0"."""
    try:
        flag = config.getoption("--fuzz")
    except ValueError:  # the option is registered by this file, which may have been loaded late
        flag = False
    return bool(flag) or os.environ.get("NETCANVAS_FUZZ", "") not in ("", "0")


def pytest_generate_tests(metafunc):
    if "family_name" not in metafunc.fixturenames:
        return
    from .families import families

    full = fuzz_profile(metafunc.config)
    names = [f.name for f in families().values() if (f.fuzz_cases if full else f.ci_cases) > 0]
    metafunc.parametrize("family_name", names)


@pytest.fixture
def fuzz_cases(request, family_name) -> tuple[int, bool]:
    """How many cases the family runs, and whether they are the same each time."""
    from .families import families

    family = families()[family_name]
    full = fuzz_profile(request.config)
    return (family.fuzz_cases if full else family.ci_cases), not full


@pytest.fixture
def tally() -> Tally:
    return TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if TALLY.counts:
        terminalreporter.write_sep("-", "fuzz outcomes")
        terminalreporter.write_line(TALLY.table())
        terminalreporter.write_line(TALLY.escapes())

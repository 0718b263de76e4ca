"""The fuzz families: for each, a hypothesis strategy of inputs, the function that runs
one (returning "ok" or raising), how to describe an input in a report, and how many cases
it gets in CI and in the ``--fuzz`` profile (at least 20,000 in all)."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .harness import CASE_SECONDS, Outcome, Tally, run_case


@dataclass(frozen=True)
class Family:
    name: str
    strategy: Callable[[], st.SearchStrategy]
    run: Callable[[Any], str | None]
    describe: Callable[[Any], str]
    ci_cases: int  # what plain pytest runs
    fuzz_cases: int  # what --fuzz and bench/fuzz.py run
    seconds: float = CASE_SECONDS  # a case running longer is a hang
    warmup: Callable[[], None] | None = None  # first imports, outside any case's time

    def warm(self) -> None:
        if self.warmup is not None and self.name not in _WARM:
            self.warmup()
            _WARM.add(self.name)


_WARM: set[str] = set()


def _project() -> Family:
    from . import projects

    return Family("project", projects.project_files, projects.check_project, projects.describe, 150, 10_000,
                  warmup=projects.warmup)


def _dataset() -> Family:
    from . import data_files

    return Family("dataset", data_files.data_cases, data_files.load_data_case, lambda c: c.describe(), 100, 5000,
                  warmup=data_files.warmup)


def _weights() -> Family:
    from . import weights_files

    return Family("weights", weights_files.weights_cases, weights_files.load_weights_case,
                  weights_files.describe, 100, 4000, warmup=weights_files.warmup)


def _cli() -> Family:
    from . import cli_options

    # commands do real work (train, export to ONNX and check it with onnxruntime): a longer bound
    return Family("cli", cli_options.argv_cases, cli_options.run_cli, cli_options.describe, 30, 1000,
                  seconds=30.0, warmup=cli_options.warmup)


def _onnx() -> Family | None:
    """The ONNX importer's family, from ``tests/fuzz/onnx_cases.py`` where it exists."""
    try:
        onnx_cases = importlib.import_module("tests.fuzz.onnx_cases")
    except ModuleNotFoundError as e:
        if e.name not in ("tests.fuzz.onnx_cases", "onnx"):
            raise
        return None

    def describe(data: Any) -> str:
        raw = data if isinstance(data, bytes) else data.SerializeToString()
        return f"an ONNX model of {len(raw):,} bytes: {raw[:120]!r}"

    # its CI cases run in tests/engine/test_onnx_hardening.py (exporting the seeds takes a minute
    # on a cold cache); here only under --fuzz and in bench/fuzz.py
    return Family("onnx", onnx_cases.onnx_models, onnx_cases.fuzz_one, describe, 0, 1000, warmup=onnx_cases.seeds)


def families() -> dict[str, Family]:
    found = [_project(), _dataset(), _weights(), _cli(), _onnx()]
    return {f.name: f for f in found if f is not None}


def hypothesis_settings(cases: int, derandomize: bool) -> settings:
    return settings(max_examples=cases, database=None, deadline=None, derandomize=derandomize,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def run_family(family: Family, cases: int, tally: Tally, seed: int | None = None,
               on_case: Callable[[Any], None] | None = None, on_outcome: Callable[[Outcome], None] | None = None,
               seconds: float | None = None) -> None:
    """Draw ``cases`` inputs of ``family`` (generation only, no shrinking) and add their
    outcomes to ``tally``; ``on_case`` hears of each input before it runs. ``seconds``:
    the time bound of a case (default: the family's)."""
    family.warm()
    seconds = family.seconds if seconds is None else seconds

    @settings(hypothesis_settings(cases, derandomize=False), phases=[Phase.generate])
    @given(family.strategy())
    def body(case):
        if on_case:
            on_case(case)
        start = time.perf_counter()
        outcome = run_case(family.run, case, family.describe, seconds)
        tally.add(family.name, outcome, time.perf_counter() - start)
        if on_outcome:
            on_outcome(outcome)

    if seed is not None:
        from hypothesis import seed as with_seed

        body = with_seed(seed)(body)
    body()



def check_family(family: Family, cases: int, same_each_time: bool, tally: Tally) -> None:
    """The pytest side: run ``cases`` cases of ``family``; the first escape or hang fails
    the test (``pytest.fail``), after hypothesis has shrunk the input to a small one."""
    import pytest

    failures: list[Outcome] = []
    family.warm()

    @settings(hypothesis_settings(cases, derandomize=same_each_time),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(family.strategy())
    def one(case):
        start = time.perf_counter()
        outcome = run_case(family.run, case, family.describe, family.seconds)
        if not failures:  # count the first pass only, not the replays while shrinking
            tally.add(family.name, outcome, time.perf_counter() - start)
        if outcome.kind in ("escape", "hang"):
            failures.append(outcome)
            pytest.fail(outcome.report(), pytrace=False)

    one()

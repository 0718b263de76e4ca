"""The editor reads a run, and asks for snapshots, at the budget's pace (the budget itself:
tests/engine/session/test_budget.py)."""

from app.engine.session.budget import BUSY_SNAPSHOT, BUSY_TICK, SPARE_SNAPSHOT, SPARE_TICK, cpu_to_spare
from app.widgets.training import panel
from app.widgets.training.session import TrainingSession


def test_the_session_polls_at_the_budget_pace(qtbot):
    session = TrainingSession()
    assert session._timer.interval() == round(1000 * (SPARE_TICK if cpu_to_spare() else BUSY_TICK))


def test_the_panel_asks_for_snapshots_at_the_budget_pace():
    assert panel.SNAPSHOT_MIN_SECONDS == (SPARE_SNAPSHOT if cpu_to_spare() else BUSY_SNAPSHOT)

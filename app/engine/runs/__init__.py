"""Every run kept: the run store (SQLite beside the project), the recorder that fills it
from a RunSupervisor, and sweeps with Optuna. No Qt here."""

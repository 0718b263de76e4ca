"""The training panel: data, settings, controls, and live views of a run."""

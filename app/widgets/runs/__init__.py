"""The Runs view (every run of the project, compared) and the Sweep dialog."""

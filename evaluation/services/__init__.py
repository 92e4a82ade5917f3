"""Writes of the evaluation app: suites (suites.py), evaluations and their job body (evaluations.py, job.py)."""

"""Graded exercises on collective algorithms: starters, a checker that runs under mpirun, references."""

from . import kinds  # noqa: F401 (registers the course exercises' case kinds)
from .registry import EXERCISES, Exercise, cases_for, get_exercise, reference_path

__all__ = ["EXERCISES", "Exercise", "cases_for", "get_exercise", "reference_path"]

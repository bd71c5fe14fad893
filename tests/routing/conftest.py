"""Fixtures for routing tests (builders live in ``builders.py``)."""

from tests.routing.builders import three_model_problem

__all__ = ["three_model_problem"]

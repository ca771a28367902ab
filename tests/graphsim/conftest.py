"""Fixtures of the simulator's tests; they live in simworld.py with the helpers the tests import."""

from simworld import receiver, sim, world

__all__ = ["receiver", "sim", "world"]

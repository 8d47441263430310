"""A fal-compatible queue simulator on loopback (see `server.py`)."""

from bot.sim.server import SimOptions, Simulator, main

__all__ = ["SimOptions", "Simulator", "main"]

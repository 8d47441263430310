"""A fal-compatible queue simulator on loopback (routes in `server.py`, the queue in
`jobs.py`, results in `results.py` and `render.py`, files in `files.py`, and the
optional state directory in `state.py` and `keeper.py`)."""

from bot.sim.options import SimOptions
from bot.sim.server import Simulator, main

__all__ = ["SimOptions", "Simulator", "main"]

"""Simulation: the pure village behind ``langso simulate`` (the runner is devices/simulator.py).

:class:`VillageModel` (model.py) steps the village; village.py says which devices it
has, aps.py and sensors.py how each behaves, flood.py the flood scenario and
payload.py the messages they publish. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from devices.simulation.aps import client_share
from devices.simulation.flood import FLOOD_LEVELS_CM
from devices.simulation.model import VillageModel
from devices.simulation.payload import Message
from devices.simulation.village import ButtonAction, SimDevice

__all__ = [
    "FLOOD_LEVELS_CM",
    "ButtonAction",
    "Message",
    "SimDevice",
    "VillageModel",
    "client_share",
]

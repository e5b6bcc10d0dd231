"""Typed keys of the simulator's state inside the aiohttp app (no module-level mutable state)."""

from collections.abc import Callable

from aiohttp import web

from services.simulator.logic import Vendor

VENDORS = web.AppKey("simulator_vendors", dict[str, Vendor])
CLOCK = web.AppKey("simulator_clock", Callable[[], float])  # seconds, monotonic

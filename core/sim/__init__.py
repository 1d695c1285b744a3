"""Simulated Interactive Brokers gateway: a TWS API server for tests, demos and `make run`.

``SimGateway`` listens on TCP and speaks the TWS API wire protocol (server version 178
by default), so any TWS API client, ib_async included, can connect and trade against a
seeded simulated market. Run it standalone with ``python -m core.sim``.
"""

from core.sim.protocol import DEFAULT_SERVER_VERSION, MAX_CLIENT_VERSION, MIN_CLIENT_VERSION
from core.sim.server import SimGateway, SimStateError

__all__ = [
    "DEFAULT_SERVER_VERSION",
    "MAX_CLIENT_VERSION",
    "MIN_CLIENT_VERSION",
    "SimGateway",
    "SimStateError",
]

"""A local, stateful Spotify Web API (and accounts service) for tests, demos and benchmarks.

It takes its rules from Spotify's published contract, not from our client: see
docs/sandbox.md.
"""

from ._fixture import FixtureError, load_fixture
from ._generator import generate_library
from ._sandbox import Sandbox
from ._settings import DEFAULT_CLIENT_ID, Counters, Faults, SandboxSettings

__all__ = [
    "DEFAULT_CLIENT_ID",
    "Counters",
    "Faults",
    "FixtureError",
    "Sandbox",
    "SandboxSettings",
    "generate_library",
    "load_fixture",
]

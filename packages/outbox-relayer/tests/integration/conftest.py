"""The relayer's integration proofs share fixtures: relaying.py's, and processes.py's."""

from processes import processes_fixture, shared_url_fixture
from relaying import relayers_fixture, second_store_fixture, simulators_fixture

__all__ = [
    "processes_fixture",
    "relayers_fixture",
    "second_store_fixture",
    "shared_url_fixture",
    "simulators_fixture",
]

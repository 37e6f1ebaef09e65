"""The relayer's integration proofs share relaying.py's fixtures: simulators, then relayers."""

from relaying import relayers_fixture, second_store_fixture, simulators_fixture

__all__ = ["relayers_fixture", "second_store_fixture", "simulators_fixture"]

"""Deprecated: the rail simulator moved to outbox_relayer.testing (this path goes next release)."""

from outbox_relayer._moved import moved_to

__getattr__ = moved_to(
    "outbox_relayer.testing",
    __name__,
    {"Faults", "LoggedRequest", "RailSimulator", "SimulatorStats", "read_request_log"},
)

"""outbox-relayer: dispatches leased outbox items to payment rails, and simulates a rail."""

from outbox_relayer.rail_config import RailConfigError, RailEndpoint, Secret, load_rails
from outbox_relayer.rails import FAILED_STATUSES, HttpRail, Rail, RailAnswer
from outbox_relayer.railsim import (
    Faults,
    LoggedRequest,
    RailSimulator,
    SimulatorStats,
    read_request_log,
)

__all__ = [
    "FAILED_STATUSES",
    "Faults",
    "HttpRail",
    "LoggedRequest",
    "Rail",
    "RailAnswer",
    "RailConfigError",
    "RailEndpoint",
    "RailSimulator",
    "Secret",
    "SimulatorStats",
    "load_rails",
    "read_request_log",
]

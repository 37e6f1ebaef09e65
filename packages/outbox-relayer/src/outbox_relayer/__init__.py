"""outbox-relayer: dispatches leased outbox items to payment rails, repairs expired leases.

The rail simulator and the delivery audit are outbox_relayer.testing's.
"""

from outbox_relayer._moved import moved_to
from outbox_relayer.backoff import Backoff
from outbox_relayer.config import ConfigError, RelayerConfig
from outbox_relayer.lease_repair import LeaseRepairer, RepairCycle
from outbox_relayer.rail_config import RailConfigError, RailEndpoint, Secret, load_rails
from outbox_relayer.rails import FAILED_STATUSES, HttpRail, NoopRail, Rail, RailAnswer
from outbox_relayer.relayer import Relayer, RelayerSettings
from outbox_relayer.signals import (
    CycleSignals,
    Metrics,
    Signals,
    configure_logging,
    start_metrics_server,
)

__all__ = [
    "FAILED_STATUSES",
    "Backoff",
    "ConfigError",
    "CycleSignals",
    "HttpRail",
    "LeaseRepairer",
    "Metrics",
    "NoopRail",
    "Rail",
    "RailAnswer",
    "RailConfigError",
    "RailEndpoint",
    "Relayer",
    "RelayerConfig",
    "RelayerSettings",
    "RepairCycle",
    "Secret",
    "Signals",
    "configure_logging",
    "load_rails",
    "start_metrics_server",
]

# Until 0.1.0 the simulator and the audit were exported here; for one release they still are.
__getattr__ = moved_to(
    "outbox_relayer.testing",
    __name__,
    {
        "DeliveryAudit",
        "Faults",
        "LoggedRequest",
        "RailSimulator",
        "SimulatorStats",
        "audit_delivery",
        "lane_order_problems",
        "read_request_log",
    },
)

"""outbox-relayer: dispatches leased outbox items to payment rails, repairs expired leases."""

from outbox_relayer.backoff import Backoff
from outbox_relayer.config import ConfigError, RelayerConfig
from outbox_relayer.delivery_audit import DeliveryAudit, audit_delivery, lane_order_problems
from outbox_relayer.lease_repair import LeaseRepairer, RepairCycle
from outbox_relayer.rail_config import RailConfigError, RailEndpoint, Secret, load_rails
from outbox_relayer.rails import FAILED_STATUSES, HttpRail, NoopRail, Rail, RailAnswer
from outbox_relayer.railsim import (
    Faults,
    LoggedRequest,
    RailSimulator,
    SimulatorStats,
    read_request_log,
)
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
    "DeliveryAudit",
    "Faults",
    "HttpRail",
    "LeaseRepairer",
    "LoggedRequest",
    "Metrics",
    "NoopRail",
    "Rail",
    "RailAnswer",
    "RailConfigError",
    "RailEndpoint",
    "RailSimulator",
    "Relayer",
    "RelayerConfig",
    "RelayerSettings",
    "RepairCycle",
    "Secret",
    "Signals",
    "SimulatorStats",
    "audit_delivery",
    "configure_logging",
    "lane_order_problems",
    "load_rails",
    "read_request_log",
    "start_metrics_server",
]

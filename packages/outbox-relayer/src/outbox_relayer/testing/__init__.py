"""For testing against the outbox: a rail simulator, and the audit of a ledger against its log.

Installed with outbox-relayer, and no part of a relayer: nothing of the relayer imports it
but the `outbox-relayer rail-sim` command (an import contract says so).
"""

from outbox_relayer.testing.delivery_audit import (
    DeliveryAudit,
    audit_delivery,
    lane_order_problems,
)
from outbox_relayer.testing.railsim import (
    Faults,
    LoggedRequest,
    RailSimulator,
    SimulatorStats,
    read_request_log,
)

__all__ = [
    "DeliveryAudit",
    "Faults",
    "LoggedRequest",
    "RailSimulator",
    "SimulatorStats",
    "audit_delivery",
    "lane_order_problems",
    "read_request_log",
]

"""Deprecated: the delivery audit moved to outbox_relayer.testing (this path goes next release)."""

from outbox_relayer._moved import moved_to

__getattr__ = moved_to(
    "outbox_relayer.testing", __name__, {"DeliveryAudit", "audit_delivery", "lane_order_problems"}
)

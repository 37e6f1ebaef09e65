"""The simulator and the audit moved to outbox_relayer.testing; for one release, the old paths warn."""

from __future__ import annotations

import importlib

import pytest

from outbox_relayer import testing

OLD_PATHS = [
    ("outbox_relayer", "RailSimulator"),
    ("outbox_relayer", "Faults"),
    ("outbox_relayer", "LoggedRequest"),
    ("outbox_relayer", "SimulatorStats"),
    ("outbox_relayer", "read_request_log"),
    ("outbox_relayer", "DeliveryAudit"),
    ("outbox_relayer", "audit_delivery"),
    ("outbox_relayer", "lane_order_problems"),
    ("outbox_relayer.railsim", "RailSimulator"),
    ("outbox_relayer.railsim", "read_request_log"),
    ("outbox_relayer.delivery_audit", "audit_delivery"),
    ("outbox_relayer.delivery_audit", "DeliveryAudit"),
]


@pytest.mark.parametrize(("old", "name"), OLD_PATHS)
def test_an_old_path_warns_and_gives_the_object_of_the_new_one(old: str, name: str) -> None:
    """`from <old> import <name>` still works, and says where the name lives now."""
    module = importlib.import_module(old)

    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to outbox_relayer\.testing"):
        found = getattr(module, name)

    assert getattr(testing, name) is found


def test_a_from_import_of_an_old_path_points_the_warning_at_the_importer() -> None:
    """The warning names the caller's file, so a user sees which import to change.

    (The import system looks the name up twice, so it may warn twice, from the same line.)
    """
    with pytest.warns(DeprecationWarning, match="RailSimulator moved") as caught:
        from outbox_relayer import RailSimulator  # noqa: PLC0415 - the old path under test

    assert RailSimulator is testing.RailSimulator
    assert {warning.filename for warning in caught} == {__file__}


def test_a_name_that_never_existed_is_still_an_attribute_error() -> None:
    """Only the moved names are forwarded; anything else fails as it always did."""
    with pytest.raises(AttributeError, match="has no attribute 'Nonexistent'"):
        importlib.import_module("outbox_relayer.railsim").Nonexistent  # noqa: B018

"""deploy/ works with the code: promtool, the relayer's real metric names, real commands.

The alert rules pass promtool; every metric the rules, the dashboard and docs/operations.md
name is one the relayer exports; the container entrypoint starts the real CLIs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from prometheus_client import CollectorRegistry

from outbox_relayer import Metrics
from outbox_relayer.queue_metrics import queue_metric_families

ROOT: Final = Path(__file__).parents[2]
ALERTS: Final = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD: Final = ROOT / "deploy/grafana/outbox-relayer.json"
ENTRYPOINT: Final = ROOT / "deploy/container/entrypoint.sh"
OPERATIONS: Final = ROOT / "docs/operations.md"
METRIC: Final = re.compile(r"\boutbox_(?:relayer|queue)_[a-z_]+\b(?!\()")  # not a SQL function()


def exported_families() -> list[Any]:
    """The relayer's metric families, and the queue-wide ones a `--queue-metrics` process adds.

    The relayer's labelled families are put in use, so they have samples.
    """
    registry = CollectorRegistry()
    Metrics(registry).dispatch("rtp", "DISPATCHED", 12)
    return [*registry.collect(), *queue_metric_families()]


def exported_names() -> set[str]:
    """Every metric family and sample name the relayer's registry exposes."""
    families = exported_families()
    return {f.name for f in families} | {s.name for f in families for s in f.samples}


def documented_names() -> set[str]:
    """The names a user queries by: counters with _total, gauges and histograms as named."""
    return {f"{f.name}_total" if f.type == "counter" else f.name for f in exported_families()}


def alert_expressions() -> list[str]:
    """The `expr` of every rule in alerts.yml."""
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    """The PromQL of every target of every panel of the dashboard."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def promtool() -> str:
    """Promtool from PATH: Debian's `prometheus` package (.ci/provision installs it when missing)."""
    found = shutil.which("promtool")
    assert found, "promtool is needed: .ci/provision installs it (Debian's prometheus)"
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    """`promtool check rules`: valid YAML, valid PromQL, valid templates."""
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in result.stdout


def test_the_alerts_fire_on_the_series_they_watch() -> None:
    """`promtool test rules alerts.test.yml`: the unit tests of the rules pass."""
    result = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ALERTS.parent,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("source", "expressions"),
    [
        ("alerts.yml", alert_expressions()),
        ("outbox-relayer.json", dashboard_expressions()),
        ("operations.md", [OPERATIONS.read_text(encoding="utf-8")]),
    ],
)
def test_every_metric_named_is_one_the_relayer_exports(source: str, expressions: list[str]) -> None:
    """A query on a metric that does not exist would stay silent forever: none may."""
    named = {name for expression in expressions for name in METRIC.findall(expression)}

    assert named, f"{source} names no relayer metric"
    assert named - exported_names() == set()


def test_every_exported_metric_is_documented_and_on_the_dashboard() -> None:
    """The operations guide lists each family; the dashboard plots each one."""
    families = documented_names()
    plotted = " ".join(dashboard_expressions())

    assert {n for n in families if f"`{n}`" not in OPERATIONS.read_text(encoding="utf-8")} == set()
    assert {n for n in families if n not in plotted and f"{n}_bucket" not in plotted} == set()


@pytest.mark.parametrize(
    ("mode", "usage"),
    [
        ("relay", "Usage: outbox-relayer run"),
        ("repair", "Usage: outbox-relayer run"),
        ("migrate", "Usage: outbox-db migrate"),
    ],
)
def test_the_container_entrypoint_starts_the_real_commands(mode: str, usage: str) -> None:
    """Each mode of entrypoint.sh reaches its CLI (asked for --help, so nothing runs)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.defpath}",
        "DATABASE_URL": "postgresql://relayer@db/payments",
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), mode, "--help"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(usage)

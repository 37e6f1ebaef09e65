"""Reading pytest's JUnit XML, and which test cases a manifest entry selects."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from outbox_evidence.junit import CaseOutcome, Selector, TestCase, load_junit

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

# (name, outcome, captured output); outcome is passed, failure, error or skipped.
Case = tuple[str, str, str]
MODULE = "packages.outbox-db.tests.integration.test_leases"


@pytest.fixture
def write_junit(tmp_path: Path) -> Callable[[Sequence[Case]], Path]:
    """Write a JUnit XML report as pytest does, of test cases in MODULE; return its path."""

    def write(cases: Sequence[Case]) -> Path:
        suites = ET.Element("testsuites", name="pytest tests")
        suite = ET.SubElement(suites, "testsuite", name="pytest", tests=str(len(cases)))
        for name, outcome, output in cases:
            case = ET.SubElement(suite, "testcase", classname=MODULE, name=name, time="0.5")
            if outcome != "passed":
                ET.SubElement(case, outcome, message=outcome)
            if output:
                ET.SubElement(case, "system-out").text = f"--- Captured Log ---\n{output}\n"
        path = tmp_path / "junit.xml"
        path.write_text(ET.tostring(suites, encoding="unicode"), encoding="utf-8")
        return path

    return write


def test_outcomes_come_from_failure_error_and_skipped_elements(
    write_junit: Callable[[Sequence[Case]], Path],
) -> None:
    """A failure or an error is FAILED; skipped (also xfail) proved nothing."""
    path = write_junit(
        [
            ("test_a", "passed", ""),
            ("test_b", "failure", ""),
            ("test_c", "error", ""),
            ("test_d", "skipped", ""),
        ]
    )

    report = load_junit(path)

    assert report.error is None
    assert [(c.name, c.outcome) for c in report.cases] == [
        ("test_a", CaseOutcome.PASSED),
        ("test_b", CaseOutcome.FAILED),
        ("test_c", CaseOutcome.FAILED),
        ("test_d", CaseOutcome.SKIPPED),
    ]


def test_captured_output_keeps_the_text_without_pytest_stream_headers(
    write_junit: Callable[[Sequence[Case]], Path],
) -> None:
    """The "----- Captured Log -----" headings and blank lines are dropped."""
    path = write_junit([("test_a", "passed", "first\n\nsecond")])

    (case,) = load_junit(path).cases

    assert case.output == "first\nsecond"


@pytest.mark.parametrize(
    ("classname", "name", "node_id"),
    [
        (MODULE, "test_a[x]", "packages/outbox-db/tests/integration/test_leases.py::test_a[x]"),
        (f"{MODULE}.TestGroup", "test_b", f"{MODULE.replace('.', '/')}.py::TestGroup::test_b"),
        ("odd.module", "test_c", "odd.module::test_c"),
    ],
    ids=["function", "class", "no-test-module"],
)
def test_node_id_is_rebuilt_from_classname_and_name(
    classname: str, name: str, node_id: str
) -> None:
    """The module path ends at its first test_* part; what follows are test classes."""
    case = TestCase(classname=classname, name=name, outcome=CaseOutcome.PASSED)

    assert case.node_id == node_id


def test_an_absent_or_malformed_report_says_why(tmp_path: Path) -> None:
    """Nothing is made up from a report that cannot be read: no cases, and the reason."""
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites>", encoding="utf-8")

    absent, malformed = load_junit(tmp_path / "absent.xml"), load_junit(broken)

    assert (absent.cases, absent.error) == ((), "not found")
    assert malformed.cases == ()
    assert (malformed.error or "").startswith("unreadable:")


@pytest.mark.parametrize(
    ("entry", "selected"),
    [
        ("packages/outbox-db/tests/integration/test_leases.py", {"test_a", "test_a[x]", "test_ab"}),
        ("packages/outbox-db/tests/integration/test_leases.py::test_a", {"test_a", "test_a[x]"}),
        ("packages/outbox-db/tests/integration/test_leases.py::test_a[x]", {"test_a[x]"}),
        ("packages/outbox-db/tests/integration/test_leases.py::test_a[", set()),
        ("packages/outbox-db/tests/integration/test_lease.py", set()),
    ],
    ids=["file", "test-and-its-cases", "one-case", "no-id-prefixes", "similar-file"],
)
def test_an_entry_selects_its_cases_and_no_look_alikes(entry: str, selected: set[str]) -> None:
    """file: all its tests; file::test: the test and its parametrized cases, not test_ab."""
    cases = [
        TestCase(classname=MODULE, name=name, outcome=CaseOutcome.PASSED)
        for name in ("test_a", "test_a[x]", "test_ab")
    ]

    assert selected == {case.name for case in cases if Selector.parse(entry).selects(case)}

"""Test results as pytest's JUnit XML reports them, and which results a manifest entry selects."""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Final

import attrs

from outbox_evidence.text import display_path, reason

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CaseOutcome", "JunitReport", "Selector", "TestCase", "load_junit"]

# pytest heads each captured stream with "----- Captured Out -----" and the like.
_CAPTURE_HEADER: Final = re.compile(r"^-+ Captured \w+(?: \w+)? -+$")


class CaseOutcome(enum.StrEnum):
    """What became of one test case."""

    PASSED = "passed"
    FAILED = "failed"  # a failure or an error, in any phase
    SKIPPED = "skipped"  # skipped or xfailed: it proved nothing


@attrs.frozen(order=True)
class TestCase:
    """One test case (one parametrized id) of a JUnit report."""

    __test__ = False  # not a pytest test class, whatever its name says

    classname: str  # the module path with dots, then any test classes
    name: str  # the test function, with its parameter id
    outcome: CaseOutcome
    output: str = ""  # captured output as pytest recorded it, stream headers removed

    @property
    def node_id(self) -> str:
        """The pytest node id: the test module's path (its first test_* part), then the rest."""
        parts = self.classname.split(".")
        module_end = next((i for i, p in enumerate(parts) if p.startswith("test_")), None)
        if module_end is None:
            return f"{self.classname}::{self.name}"
        path = "/".join(parts[: module_end + 1]) + ".py"
        return "::".join([path, *parts[module_end + 1 :], self.name])


@attrs.frozen
class JunitReport:
    """The test cases of one JUnit XML file, or why it could not be read."""

    source: str  # the file as the bundle names it
    cases: tuple[TestCase, ...] = ()
    error: str | None = None
    properties: tuple[tuple[str, str], ...] = ()  # the suite's recorded properties, sorted


@attrs.frozen
class Selector:
    """The test cases a manifest entry names.

    `file` (every test in it), `file::test` (every parametrized case of it), `file::Class::test`,
    or `file::test[id]` (that one case).
    """

    classname: str
    name: str | None  # None: every test of the module

    @classmethod
    def parse(cls, node_id: str) -> Selector:
        """The selector for a pytest node id relative to the repository root."""
        path, *rest = node_id.split("::")
        module = path.removesuffix(".py").replace("/", ".")
        if not rest:
            return cls(classname=module, name=None)
        *classes, name = rest
        return cls(classname=".".join([module, *classes]), name=name)

    def selects(self, case: TestCase) -> bool:
        """Whether `case` is one of the entry's test cases."""
        if self.name is None:
            return case.classname == self.classname or case.classname.startswith(
                f"{self.classname}."
            )
        if case.classname != self.classname:
            return False
        parametrized = "[" not in self.name and case.name.startswith(f"{self.name}[")
        return case.name == self.name or parametrized


def load_junit(path: Path) -> JunitReport:
    """The test cases of the JUnit XML at `path` (an unreadable file says why)."""
    source = display_path(path)
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - the report of our own test run
    except FileNotFoundError:
        return JunitReport(source=source, error="not found")
    except (OSError, ET.ParseError) as error:
        return JunitReport(source=source, error=f"unreadable: {reason(error)}")
    return JunitReport(
        source=source,
        cases=tuple(sorted(_case(e) for e in root.iter("testcase"))),
        properties=tuple(
            sorted((p.get("name", ""), p.get("value", "")) for p in root.iter("property"))
        ),
    )


def _case(element: ET.Element) -> TestCase:
    children = {child.tag for child in element}
    if children & {"failure", "error"}:
        outcome = CaseOutcome.FAILED
    elif "skipped" in children:
        outcome = CaseOutcome.SKIPPED
    else:
        outcome = CaseOutcome.PASSED
    streams = (element.findtext(tag) or "" for tag in ("system-out", "system-err"))
    lines = [
        line.rstrip()
        for stream in streams
        for line in stream.splitlines()
        if line.strip() and not _CAPTURE_HEADER.match(line.strip())
    ]
    return TestCase(
        classname=element.get("classname", ""),
        name=element.get("name", ""),
        outcome=outcome,
        output="\n".join(lines),
    )

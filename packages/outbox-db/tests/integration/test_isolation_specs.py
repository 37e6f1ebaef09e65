"""Proofs: interleavings run by PostgreSQL's isolation tester print the expected output.

Each spec (tests/isolation/specs/NAME.spec) runs with `pg_isolation_regress` of the server's
major version (Debian's postgresql-client-<major>, else the pinned build's, fetched once) in a
fresh clone of the migrated template, under the roles the real system uses: every session
sets symphony_executor (relayers, repairers, services) or symphony_readonly (observers);
only the clock session, which moves leases into the past, and the ledger's owner stay
privileged. Its output must equal tests/isolation/expected/NAME.out byte for byte; the
specs print no ids or times, so the output is deterministic.

Each run leaves reports/isolation/NAME.json (the spec, whether it passed, its output and
the differences) for the evidence bundle (12_isolation.txt).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from psycopg.conninfo import conninfo_to_dict

from outbox_db import builds
from outbox_db.errors import EmbeddedServerError
from outbox_db.testonly import query_no_role

if TYPE_CHECKING:
    from outbox_db.testonly.pytest_plugin import Server

ROOT: Final = Path(__file__).parents[4]
ISOLATION: Final = ROOT / "packages/outbox-db/tests/isolation"
SPECS: Final = sorted(path.stem for path in (ISOLATION / "specs").glob("*.spec"))
REPORTS: Final = ROOT / "reports" / "isolation"


def isolation_tester(url: str) -> builds.IsolationTester:
    """The isolation tester of the server's major version; fails saying why it cannot be had."""
    ((version,),) = query_no_role(url, "SELECT current_setting('server_version_num')::integer")
    try:
        return builds.isolation_tester(int(version) // 10000, progress=print)
    except EmbeddedServerError as error:
        pytest.fail(f"no isolation tester: {error}")


def libpq_environment(url: str) -> dict[str, str]:
    """The server and login of `url` as libpq variables, for the tester's connections."""
    parts = conninfo_to_dict(url)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
    chosen = {env: str(parts[key]) for key, env in names.items() if parts.get(key)}
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")} | chosen


@pytest.fixture(scope="module", autouse=True)
def fresh_reports() -> None:
    """No report of an earlier run survives into this one."""
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)


def test_every_spec_has_its_expected_output() -> None:
    """Each spec has a committed expected output, and each expected output a spec."""
    expected = sorted(path.stem for path in (ISOLATION / "expected").glob("*.out"))
    assert SPECS
    assert expected == SPECS


@pytest.mark.parametrize("spec", SPECS)
def test_isolation_spec_gives_the_expected_output(
    outbox_server: Server, outbox_template: str, spec: str
) -> None:
    """The spec's permutations, run by pg_isolation_regress, print exactly the expected output."""
    name = f"outbox_isolation_{os.getpid()}_{spec}"
    out = REPORTS / spec
    with outbox_server.janitor(name, template_dbname=outbox_template):
        url = outbox_server.database_url(name)
        tester = isolation_tester(url)
        finished = subprocess.run(
            [
                str(tester.path),
                "--use-existing",
                f"--dbname={name}",
                f"--inputdir={ISOLATION}",
                f"--outputdir={out}",
                spec,
            ],
            env=tester.environment(libpq_environment(url)),
            capture_output=True,
            text=True,
            check=False,
        )
    output = out / "results" / f"{spec}.out"
    diffs = out / "regression.diffs"
    actual = output.read_text(encoding="utf-8") if output.is_file() else ""
    expected = (ISOLATION / "expected" / f"{spec}.out").read_text(encoding="utf-8")
    passed = finished.returncode == 0 and actual == expected
    diff = diffs.read_text(encoding="utf-8") if diffs.is_file() else ""
    report = {"spec": spec, "passed": passed, "output": actual, "diff": diff}
    (REPORTS / f"{spec}.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")

    assert finished.returncode == 0, finished.stdout + finished.stderr + diff
    assert actual == expected

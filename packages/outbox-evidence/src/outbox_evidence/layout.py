"""The bundle's files: stable names, what each holds, and the markers `verify` looks for."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "CHECKSUMS",
    "EXECUTOR_BOUNDARY",
    "FILES",
    "FUNCTIONS",
    "GRANTS",
    "GUARDRAILS",
    "HARDENING",
    "ISOLATION",
    "LEDGER",
    "LEDGER_CHECKPOINTS",
    "LEDGER_ROWS",
    "MANIFEST_COPY",
    "MIGRATIONS",
    "MISSING_LINE",
    "OPERATOR_LOG",
    "PROOFS",
    "PROOF_CONTROLS",
    "README",
    "REGRESSION",
    "ROLE_USAGE",
    "SCHEMA",
    "TEST_RESULTS",
    "VERDICT_FAIL_LINE",
    "Part",
    "verdict",
]

README: Final = "00_README.txt"
GRANTS: Final = "01_grants.txt"
FUNCTIONS: Final = "02_functions.sql"
SCHEMA: Final = "03_schema.sql"
PROOFS: Final = "04_proofs.txt"
TEST_RESULTS: Final = "05_test_results.txt"
ROLE_USAGE: Final = "06_role_usage.txt"
GUARDRAILS: Final = "07_guardrails.txt"
REGRESSION: Final = "08_regression.txt"
MIGRATIONS: Final = "09_migrations.txt"
PROOF_CONTROLS: Final = "10_proof_controls.txt"
OPERATOR_LOG: Final = "11_operator_log.txt"
ISOLATION: Final = "12_isolation.txt"
EXECUTOR_BOUNDARY: Final = "13_executor_boundary.txt"
HARDENING: Final = "14_hardening.txt"
LEDGER: Final = "15_ledger.txt"
LEDGER_ROWS: Final = "16_ledger_rows.jsonl"
LEDGER_CHECKPOINTS: Final = "17_ledger_checkpoints.jsonl"
MANIFEST_COPY: Final = "proofs.toml"
CHECKSUMS: Final = "SHA256SUMS"

# Every file but SHA256SUMS, with what it holds; 00_README.txt repeats this for the reader.
FILES: Final = {
    README: "this guide: the files, the invariants and their proofs, the SQLSTATE map",
    GRANTS: "privileges on the outbox tables, view, functions and schema public, and the "
    "members of the outbox roles, as the catalog reports them",
    FUNCTIONS: "the full definition of every outbox function (pg_get_functiondef)",
    SCHEMA: "DDL of the lease columns and their CHECK, the ledger column recording the "
    "login that wrote each attempt, every constraint, the triggers (append-only guard), the "
    "indexes (terminal guard) and the status view",
    PROOFS: "each invariant's proofs with their result in this run, expected SQLSTATE and "
    "pytest command, and the captured output of the lease-repair and concurrency proofs",
    TEST_RESULTS: "totals of every test run read from the JUnit XML, and each test case "
    "that failed or was skipped",
    ROLE_USAGE: "every place in the code that switches role or opens a database connection, "
    "by package; production code may do so only inside packages/outbox-db",
    GUARDRAILS: "the static guardrails' findings, their waivers with reasons and the scope file",
    REGRESSION: "the DISPATCHING regression query, verbatim, and its result",
    MIGRATIONS: "the applied schema migrations with their SHA-256, next to the shipped ones",
    PROOF_CONTROLS: "each sabotage migration (an invariant removed) and the proofs that then "
    "failed: evidence that every proof can fail (`nox -s proof_controls`)",
    OPERATOR_LOG: "what operators did, from two append-only records: every re-drive of a FAILED "
    "item (who asked, when by the database clock in UTC, the new item, the reason) and every "
    "switch of a rail's ordering (who, when, which rail, ordered or not, why), oldest first",
    ISOLATION: "PostgreSQL's isolation tester on each interleaving spec (disjoint claims, "
    "uncommitted enqueues, completion after repair, repair racing completion, append-only "
    "refusals, why a claim never deletes): the output and whether it matched the expected one",
    EXECUTOR_BOUNDARY: "each attempt of the boundary table as each outbox role (producer, "
    "executor, readonly, auditor, operator): the exact SQLSTATE expected for that role (a "
    "refusal, or 00000 for what it may do) and whether this run's test of it passed",
    HARDENING: "whether the optional superuser hardening (`outbox-db harden`) is in effect, read "
    "from the catalog: who may execute each large-object function, whether the event triggers "
    "record DDL on the outbox's objects, and each statement they recorded",
    LEDGER: "the ledger's tamper evidence: every ledger, operator-log and ordering-history row "
    "recomputed against the signed checkpoints (verdict), each row modified, deleted, inserted "
    "or reordered named, the checkpoints and the keys that signed them",
    LEDGER_ROWS: "every ledger, operator-log and ordering-history row as the database holds it "
    "(its canonical fields) with the digest written with it, one JSON object per line; each "
    "checkpoint's rows together after a '# checkpoint N' line, as it sealed them",
    LEDGER_CHECKPOINTS: "the public keys, then the signed checkpoints from the exporter's "
    "directory (a header line, and from format /2 a line of leaves): what `outbox-evidence "
    "verify-ledger` checks 16 against",
    MANIFEST_COPY: "the reviewed invariant-to-proof manifest this bundle was built from, verbatim",
}

VERDICT_PROBLEMS: Final = 5  # the file itself lists them all
MISSING_LINE: Final = re.compile(r"^(?:-- |# )?MISSING: (?P<reason>.*)$", re.MULTILINE)
VERDICT_FAIL_LINE: Final = re.compile(r"^(?:-- |# )?verdict: FAIL.*$", re.MULTILINE)


def _comment(name: str) -> str:
    return "-- " if PurePosixPath(name).suffix == ".sql" else "# "


def verdict(problems: Iterable[str], passed: str) -> str:
    """`verdict: PASS (passed)`, or `verdict: FAIL (problem; problem; ... and N more)`."""
    listed = list(problems)
    if not listed:
        return f"verdict: PASS ({passed})"
    shown = listed[:VERDICT_PROBLEMS]
    more = [f"and {len(listed) - len(shown)} more"] if len(listed) > len(shown) else []
    return f"verdict: FAIL ({'; '.join([*shown, *more])})"


@attrs.frozen
class Part:
    """One file of the bundle, and why some of it could not be produced, if so."""

    name: str
    content: str
    missing: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, body: str, missing: Iterable[str] = ()) -> Part:
        """A file with its header line, a MISSING line per missing piece, then `body`."""
        reasons = tuple(missing)
        prefix = _comment(name)
        lines = [f"{prefix}{name}: {FILES[name]}"]
        lines += [f"{prefix}MISSING: {reason}" for reason in reasons]
        text = "\n".join(lines) + "\n" + (f"\n{body.rstrip()}\n" if body.strip() else "")
        return cls(name=name, content=text, missing=reasons)

    @classmethod
    def unavailable(cls, name: str, reason: str) -> Part:
        """A file that could not be produced at all: its header and why."""
        return cls.of(name, "", [reason])

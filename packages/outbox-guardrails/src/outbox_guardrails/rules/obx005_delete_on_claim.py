"""OBX005 delete-on-claim: the claim must lease the pending row, never delete it.

Anti-pattern: a ``DELETE FROM payment_outbox_pending`` whose ``USING`` clause reads rows
locked with ``FOR UPDATE ... SKIP LOCKED`` (``WITH due AS (SELECT ... FOR UPDATE SKIP
LOCKED) DELETE FROM payment_outbox_pending USING due ...``), whatever the CTE is called,
however the table is qualified, aliased or cased, whether the CTE belongs to the DELETE or to
an enclosing WITH, and also when the locked rows reach the DELETE through another CTE or a
subquery. This was the DISPATCHING era's claim: the item left the queue the moment a worker
picked it, so a worker that crashed before recording an outcome lost the payment instruction
(or left it to a scan of the ledger), and nothing in the database could tell a lost
item from a finished one.

Best practice: claim by leasing: ``UPDATE payment_outbox_pending SET claimed_by, lease_token,
lease_expires_at ... FROM due`` (``claim_outbox_batch``). The pending row leaves the queue only
when ``complete_outbox_attempt`` records a terminal outcome for the lease holder, deleting by
key (``WHERE outbox_id = ...`` or ``IN (SELECT ...)``) in the same statement that appends the
attempt; an expired lease comes back through ``repair_expired_leases``.

Scope: every SQL statement of the tree (``.sql`` files, SQL literals in Python, PL/pgSQL and
SQL-language function bodies), wherever it lives. Deletes keyed by ``WHERE ... IN (SELECT ...
FROM <cte>)`` pass, as in our own completion and repair functions; ``SKIP LOCKED`` written
directly inside the DELETE (``WHERE outbox_id IN (SELECT ... FOR UPDATE SKIP LOCKED)``) is the
same claim spelled without a CTE, and fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pglast import ast as sql_ast
from pglast.enums import LockWaitPolicy

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._util import Scope, finding, relation_name, scoped, walk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX005",
    name="delete-on-claim",
    summary="No DELETE FROM payment_outbox_pending USING rows claimed with FOR UPDATE SKIP LOCKED.",
    anti_pattern=(
        "Deleting the pending row when it is claimed takes the item out of the queue before "
        "any outcome is recorded: a worker that dies mid-dispatch loses the instruction."
    ),
    best_practice=(
        "Lease the row (claim_outbox_batch sets claimed_by, lease_token, lease_expires_at); "
        "delete it by key only when complete_outbox_attempt records a terminal outcome."
    ),
)
QUEUE: Final = "payment_outbox_pending"


def check(tree: Tree) -> Iterator[Finding]:
    """One finding per statement holding a delete-on-claim, at the statement's first line."""
    for statement in tree.sql_statements:
        if any(_deletes_on_claim(n, scope) for n, scope in scoped(statement.node)):
            yield finding(
                RULE,
                statement.source,
                statement.line,
                detail="DELETE ... USING rows locked FOR UPDATE SKIP LOCKED",
            )


def _deletes_on_claim(node: sql_ast.Node, scope: Scope) -> bool:
    if not isinstance(node, sql_ast.DeleteStmt) or relation_name(node.relation) != QUEUE:
        return False
    using = any(_reads_skip_locked(item, scope, frozenset()) for item in node.usingClause or ())
    return using or (node.whereClause is not None and _locks_skip(node.whereClause))


def _reads_skip_locked(item: sql_ast.Node, scope: Scope, seen: frozenset[str]) -> bool:
    """Whether a FROM/USING item reads rows some query locked with SKIP LOCKED."""
    if isinstance(item, sql_ast.RangeVar):
        name = item.relname or ""
        if item.schemaname or name not in scope or name in seen:
            return False
        return _query_skips(scope[name], scope, seen | {name})
    if isinstance(item, sql_ast.RangeSubselect):
        return _query_skips(item.subquery, scope, seen)
    if isinstance(item, sql_ast.JoinExpr):
        return _reads_skip_locked(item.larg, scope, seen) or _reads_skip_locked(
            item.rarg, scope, seen
        )
    return False


def _query_skips(query: sql_ast.Node, scope: Scope, seen: frozenset[str]) -> bool:
    """A query that takes SKIP LOCKED itself, or reads a visible CTE that does."""
    return _locks_skip(query) or any(
        isinstance(node, sql_ast.RangeVar) and _reads_skip_locked(node, scope, seen)
        for node in walk(query)
    )


def _locks_skip(node: sql_ast.Node) -> bool:
    return any(
        isinstance(n, sql_ast.LockingClause) and n.waitPolicy == LockWaitPolicy.LockWaitSkip
        for n in walk(node)
    )

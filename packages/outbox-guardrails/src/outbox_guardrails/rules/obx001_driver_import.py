"""OBX001 driver-import: only outbox-db imports a PostgreSQL driver.

Anti-pattern: ``import psycopg``, ``from psycopg_pool import ConnectionPool``, ``import
asyncpg`` (or any other PostgreSQL driver, also through ``importlib.import_module`` or
``__import__`` with a literal name) outside packages/outbox-db. A service holding the driver
can open its own connections and send any SQL with any role: the typed boundary, its
sanitised errors and its role handling are then bypassed. Tests and development scripts are
exempt from this rule only; they still may not send SQL (OBX002) or switch roles (OBX003).

Best practice: depend on outbox-db and call the typed ``OutboxStore`` methods, which name the
DB functions; share the enqueue's transaction through ``store.transaction()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._python import DRIVERS, imported_modules
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX001",
    name="driver-import",
    summary="No PostgreSQL driver (psycopg, psycopg_pool, asyncpg...) imported outside outbox-db.",
    anti_pattern=(
        "Code that imports the driver can open its own connections and send any SQL as any "
        "role, bypassing the typed boundary, its sanitised errors and its role handling."
    ),
    best_practice=(
        "Depend on outbox-db and call the typed OutboxStore methods; share the enqueue's "
        "transaction through store.transaction()."
    ),
    gated=True,
)


def check(tree: Tree) -> Iterator[Finding]:
    """Driver imports in Python outside outbox-db, tests and scripts."""
    for module in tree.python_modules:
        source = module.source
        if source.in_db_package or source.is_test or source.is_script:
            continue
        for node, names in imported_modules(module.module, source):
            drivers = sorted({name.split(".")[0] for name in names} & DRIVERS)
            if drivers:
                yield finding(
                    RULE, source, node.lineno, node.col_offset + 1, f"imports {', '.join(drivers)}"
                )

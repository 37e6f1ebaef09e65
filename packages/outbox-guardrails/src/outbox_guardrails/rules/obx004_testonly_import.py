"""OBX004 testonly-import: the owner escape hatch ``outbox_db.testonly`` is imported only by tests.

Anti-pattern: ``import outbox_db.testonly``, ``from outbox_db.testonly import query_no_role``,
``from outbox_db import testonly``, a relative import that reaches it from inside outbox_db,
``importlib.import_module("outbox_db.testonly...")`` or a ``pytest_plugins`` entry naming it,
anywhere but a test (a ``tests/`` directory of any package or of the root, or a
``conftest.py``). The escape hatch runs SQL as the schema owner with no role: production code
that reaches it has no role boundary at all, and a wheel built without it fails at import.
The hatch's own modules may import each other.

Best practice: production code goes through the typed ``OutboxStore``; proofs that need the
owner import ``outbox_db.testonly`` from their ``tests/`` directory or a ``conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from outbox_guardrails.model import Rule
from outbox_guardrails.rules._python import imported_modules
from outbox_guardrails.rules._util import finding

if TYPE_CHECKING:
    from collections.abc import Iterator

    from outbox_guardrails.model import Finding
    from outbox_guardrails.tree import Tree

RULE: Final = Rule(
    id="OBX004",
    name="testonly-import",
    summary="outbox_db.testonly (the owner escape hatch) is imported only from tests.",
    anti_pattern=(
        "The escape hatch sends SQL as the schema owner with no role; reached from production "
        "code it removes the role boundary, and it is absent from the production wheel."
    ),
    best_practice=(
        "Use the typed OutboxStore in production code; import outbox_db.testonly only from a "
        "tests/ directory or a conftest.py."
    ),
    gated=True,
)
TESTONLY: Final = "outbox_db.testonly"
TESTONLY_PACKAGE: Final = "packages/outbox-db/src/outbox_db/testonly/"


def check(tree: Tree) -> Iterator[Finding]:
    """Imports of the escape hatch from anything but tests and the hatch itself."""
    for module in tree.python_modules:
        source = module.source
        if source.is_test or source.path.startswith(TESTONLY_PACKAGE):
            continue
        for node, names in imported_modules(module.module, source):
            if any(name == TESTONLY or name.startswith(f"{TESTONLY}.") for name in names):
                yield finding(RULE, source, node.lineno, node.col_offset + 1, f"imports {TESTONLY}")

"""The command line's click and rich are an extra: a service importing outbox_db never loads them."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLI_PACKAGES = ("click", "rich")


def python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter (this one's), its output captured."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_importing_outbox_db_loads_neither_click_nor_rich() -> None:
    """A service that only enqueues pays nothing for the command line, installed or not."""
    probe = (
        "import sys, outbox_db, outbox_db.integrations; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'click', 'rich'}))"
    )

    assert python(probe).stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("missing", "named"), [(("rich",), "rich"), (("click", "rich"), "click and rich")]
)
def test_without_the_extra_the_command_says_which_to_install(
    missing: tuple[str, ...], named: str
) -> None:
    """`outbox-db` without click or rich: one line naming the extra, exit 1, no traceback."""
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in missing)  # as if absent
    result = python(f"import sys; {hide}; from outbox_db.__main__ import main; main()")

    assert result.returncode == 1
    assert result.stderr == (
        f"outbox-db: the command line needs {named}: pip install 'outbox-db[cli]'\n"
    )


def test_with_the_extra_python_dash_m_runs_the_command_line() -> None:
    """`python -m outbox_db` is the same command line as the `outbox-db` script."""
    result = subprocess.run(
        [sys.executable, "-m", "outbox_db", "--help"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0
    assert "Usage:" in result.stdout
    assert "migrate" in result.stdout

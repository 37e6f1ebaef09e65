"""The wheel alone: it ships the schema, leaves the test-only escape hatch out, and migrates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from outbox_db.testonly import query_no_role

PACKAGE = Path(__file__).parents[2]
SCHEMA = PACKAGE.parents[1] / "schema"


def uv() -> str:
    """The uv next to this interpreter (the test sessions install it), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is needed to build and install the wheel (it is in the test group)"
    return found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """outbox-db built as a wheel, as `pip install outbox-db` would receive it."""
    out = tmp_path_factory.mktemp("dist")
    run(uv(), "build", "--wheel", "--out-dir", str(out), str(PACKAGE))
    (built,) = out.glob("outbox_db-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv holding only the wheel, its command line's extra and their dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    run(uv(), "venv", "--quiet", "--python", sys.executable, str(venv))
    with_cli = f"outbox-db[cli] @ {wheel.as_uri()}"
    run(uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), with_cli)
    return venv / "bin"


def test_wheel_ships_the_schema_and_not_the_escape_hatch(wheel: Path) -> None:
    """Every schema file is inside the wheel; outbox_db.testonly is not."""
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_schema = {
        name.removeprefix("outbox_db/schema/")
        for name in names
        if name.startswith("outbox_db/schema/")
    }

    assert shipped_schema == {str(path.relative_to(SCHEMA)) for path in SCHEMA.rglob("*.sql")}
    assert "outbox_db/py.typed" in names
    assert not [name for name in names if "testonly" in name]


def test_installed_wheel_alone_migrates_an_empty_database(
    installed: Path, outbox_empty_database: str
) -> None:
    """`pip install 'outbox-db[cli]'` then `outbox-db migrate` builds the whole schema."""
    result = run(str(installed / "outbox-db"), "migrate", "--url", outbox_empty_database)

    assert "applied v1/0001_roles.sql" in result.stdout
    tables = query_no_role(
        outbox_empty_database,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND relname LIKE 'payment_outbox_%' AND NOT relispartition"
        " ORDER BY relname",
    )
    assert tables == [
        ("payment_outbox_attempts",),
        ("payment_outbox_pending",),
        ("payment_outbox_settings",),
    ]


def test_installed_wheel_cannot_import_the_escape_hatch(installed: Path) -> None:
    """Even with the test variable set, the production install has no outbox_db.testonly."""
    env = {**os.environ, "OUTBOX_DB_TESTONLY": "1"}
    result = subprocess.run(
        [str(installed / "python"), "-c", "import outbox_db.testonly"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )

    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'outbox_db.testonly'" in result.stderr


def test_installed_wheel_imports_its_integrations_without_their_frameworks(
    installed: Path,
) -> None:
    """The wheel alone has no SQLAlchemy or Django, and still imports outbox_db.integrations."""
    imports = "import outbox_db.integrations.django, outbox_db.integrations.sqlalchemy"
    absent = "import importlib.util as u; print(u.find_spec('sqlalchemy'), u.find_spec('django'))"

    run(str(installed / "python"), "-c", imports)
    assert run(str(installed / "python"), "-c", absent).stdout == "None None\n"

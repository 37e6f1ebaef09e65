"""Replay the CI workflow's steps, in order, on this machine without its extras.

GitHub's runner cannot be had here, nor Docker; what can be had is this machine minus what
the runner lacks. In a private mount namespace the replay lays a copy-on-write overlay over
/ (nothing it does reaches the machine), removes Debian's PostgreSQL packages (server,
client, isolation tester), prometheus (promtool) and pgbouncer from it with dpkg, empties
the PostgreSQL build cache, clones the committed tree as actions/checkout would, and makes a
fresh virtualenv for actions/setup-python. Then, chrooted there, it runs each `run:` step
with bash as GitHub does (`-eo pipefail`), the job's env and $GITHUB_ENV, under the step's
`if:` (only the expressions the workflow uses; any other is refused, never guessed). The
`uses:` steps of GitHub's own actions are not run; the upload steps' files are checked.
Every process started inside is ended afterwards. Exit 1 if any step failed.

Needs root (mount namespaces, chroot). `--help` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT: Final = Path(__file__).parents[2]
WORKFLOW: Final = ROOT / ".github" / "workflows" / "ci-security.yml"
JOB: Final = "gate"
INSIDE: Final = "--inside-namespace"
# What GitHub's ubuntu-24.04 runner lacks (or has only in another version): gone, so the
# provisioning and the sessions must bring it. Debian's PostgreSQL goes whole.
EXTRAS: Final = re.compile(r"^(postgresql.*|prometheus|pgbouncer|wrk)$")
BUILD_CACHE: Final = Path("var/cache/outbox")  # builds.cache_root() as root
PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHECKOUT: Final = Path("/tmp/checkout")
SETUP_PYTHON: Final = Path("/opt/setup-python")
GITHUB_ENV: Final = Path("/tmp/github_env")
RUNNER_TEMP: Final = Path("/tmp/runner_temp")
# How this machine reaches the package registries (its CA bundle, proxy, index settings):
# the runner has its own, so these pass into the steps.
NETWORK: Final = re.compile(r"CERT|CA_BUNDLE|SSL|PROXY|^PIP_|^UV_|^NPM_CONFIG_", re.IGNORECASE)


def main() -> int:
    """Parse the options; re-run inside a private mount namespace; replay there."""
    options = _parser().parse_args()
    if os.geteuid() != 0:
        print("replay: needs root (a mount namespace and a chroot)", file=sys.stderr)
        return 1
    if not options.inside_namespace:
        command = ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv]
        return subprocess.run([*command, INSIDE], check=False).returncode
    job = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"][JOB]
    matrix = {"postgres": options.pg_version}
    if options.pg_version not in job["strategy"]["matrix"]["postgres"]:
        print(f"replay: {options.pg_version} is not in the workflow's matrix", file=sys.stderr)
        return 1
    with _machine(options.keep) as root:
        env = {"OUTBOX_GATE_PROOFS": options.proofs} if options.proofs else {}
        results = _replay(root, job | {"env": job["env"] | env}, matrix, options.only)
    return _summary(results)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-version", default="15", help="the matrix leg (default 15)")
    parser.add_argument(
        "--only",
        type=lambda names: names.split(","),
        help="run only the steps whose names start so (comma-separated); the checkout, "
        "Python and every step without a name always run",
    )
    parser.add_argument(
        "--proofs",
        help="OUTBOX_GATE_PROOFS for the steps: the integration step runs only these proofs "
        "(space-separated paths), for a shorter replay",
    )
    parser.add_argument("--keep", action="store_true", help="keep the overlay for a look")
    parser.add_argument(INSIDE, action="store_true", help=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def _machine(keep: bool) -> Iterator[Path]:
    """The overlay root, stripped of the extras, with the tree and Python in place."""
    scratch = Path(tempfile.mkdtemp(prefix="outbox-replay-", dir="/var/tmp"))
    root = scratch / "root"
    try:
        _mount_overlay(scratch, root)
        _strip_extras(root)
        _checkout(root)
        _log(f"setup-python: a fresh virtualenv at {SETUP_PYTHON}")
        _chroot(
            root, [str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "venv", str(SETUP_PYTHON)]
        )
        yield root
    finally:
        _end_processes(root)
        subprocess.run(["umount", "--recursive", "--lazy", str(root)], check=False)
        if keep:
            _log(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _mount_overlay(scratch: Path, root: Path) -> None:
    for name in ("upper", "work", "root", "tmp"):
        (scratch / name).mkdir()
    lower = f"lowerdir=/,upperdir={scratch / 'upper'},workdir={scratch / 'work'}"
    _run(["mount", "-t", "overlay", "overlay", "-o", lower, str(root)])
    _run(["mount", "-t", "proc", "proc", str(root / "proc")])
    for shared in ("dev", "sys"):
        _run(["mount", "--rbind", f"/{shared}", str(root / shared)])
    # A /tmp of its own on disk: the sessions' virtualenvs are large for a tmpfs.
    (scratch / "tmp").chmod(0o1777)
    _run(["mount", "--bind", str(scratch / "tmp"), str(root / "tmp")])


def _strip_extras(root: Path) -> None:
    listed = _chroot(root, ["dpkg-query", "-W", "-f", "${Package} ${Status}\n"], capture=True)
    installed = [line.split()[0] for line in listed.splitlines() if line.endswith(" installed")]
    extras = sorted(name for name in installed if EXTRAS.match(name))
    # Debian's way to keep package scripts in a chroot from starting or stopping services:
    # the removals must not stop the machine's own servers, nor the installs start any.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
    policy.chmod(0o755)
    _log(f"removing from the overlay: {' '.join(extras)}")
    if extras:
        # --force-depends: what depends on them (nothing the runner has) is not our business.
        _chroot(root, ["dpkg", "--remove", "--force-depends", *extras], capture=True)
    shutil.rmtree(root / BUILD_CACHE, ignore_errors=True)


def _checkout(root: Path) -> None:
    """actions/checkout: the committed HEAD, as a git repository."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    _log(f"checkout: {head}")
    target = root / CHECKOUT.relative_to("/")
    _run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(target)])
    _run(["git", "-C", str(target), "checkout", "--quiet", "--detach", head])


def _replay(
    root: Path, job: dict[str, Any], matrix: dict[str, str], only: list[str] | None
) -> list[tuple[str, str, float]]:
    """Each step in order, as GitHub would run it; (name, outcome, seconds) for each."""
    (root / GITHUB_ENV.relative_to("/")).touch()
    (root / RUNNER_TEMP.relative_to("/")).mkdir(mode=0o755)
    results: list[tuple[str, str, float]] = []
    for step in job["steps"]:
        name = str(step.get("name") or step.get("uses") or step.get("run"))
        failed = any(outcome == "FAIL" for _, outcome, _ in results)
        if only is not None and "name" in step and not name.startswith(tuple(only)):
            continue
        if not _condition(str(step.get("if", "success()")), matrix, failed=failed):
            results.append((name, "not due", 0.0))
            continue
        started = time.monotonic()
        outcome = _step(root, step, job, matrix)
        results.append((name, outcome, time.monotonic() - started))
    return results


def _step(root: Path, step: dict[str, Any], job: dict[str, Any], matrix: dict[str, str]) -> str:
    if "uses" in step:
        return _action(root, str(step["uses"]), step.get("with", {}))
    _log(f"run: {step.get('name', step['run'])}")
    env = {
        "PATH": f"{SETUP_PYTHON / 'bin'}:{PATH}",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(CHECKOUT),
        "GITHUB_ENV": str(GITHUB_ENV),
        "RUNNER_TEMP": str(RUNNER_TEMP),
        **{key: value for key, value in os.environ.items() if NETWORK.search(key)},
        **{key: _substitute(str(value), matrix) for key, value in job["env"].items()},
        **_github_env(root),
    }
    script = f"cd {CHECKOUT}\n{_substitute(str(step['run']), matrix)}"
    command = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items())]
    shell = ["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    finished = subprocess.run(["chroot", str(root), *command, *shell], check=False)
    return "pass" if finished.returncode == 0 else "FAIL"


def _action(root: Path, uses: str, inputs: dict[str, Any]) -> str:
    """GitHub's own actions: the checkout and Python are in place; uploads: files present."""
    name = uses.split("@", maxsplit=1)[0]
    if name in {"actions/checkout", "actions/setup-python"}:
        return "pass"
    paths = str(inputs.get("path") or inputs.get("sarif_file") or inputs.get("files") or "")
    missing = [p for p in paths.split() if not (root / CHECKOUT.relative_to("/") / p).exists()]
    for path in missing:
        _log(f"{name}: {path} is missing")
    return "FAIL" if missing else "files present"


def _condition(expression: str, matrix: dict[str, str], *, failed: bool) -> bool:
    """A step's `if:`, for the forms the workflow uses; anything else is refused."""
    text = expression.removeprefix("${{").removesuffix("}}").strip()
    terms = [term.strip() for term in text.split("&&")]
    return all(_term(term, matrix, failed=failed) for term in terms)


def _term(term: str, matrix: dict[str, str], *, failed: bool) -> bool:
    if term in {"always()", "!cancelled()"}:
        return True
    if term == "success()":
        return not failed
    if term.startswith("startsWith(github.ref, 'refs/tags/')"):
        return False  # the replay is a branch push
    if found := re.fullmatch(r"matrix\.(\w+) == '([^']*)'", term):
        return matrix[found.group(1)] == found.group(2)
    msg = f"replay: an `if:` it does not know: {term!r}"
    raise SystemExit(msg)


def _substitute(text: str, matrix: dict[str, str]) -> str:
    """`${{ matrix.NAME }}`; any other expression in a run step is refused."""

    def value(found: re.Match[str]) -> str:
        inner = found.group(1).strip()
        if not inner.startswith("matrix."):
            msg = f"replay: an expression it does not know: {inner!r}"
            raise SystemExit(msg)
        return matrix[inner.removeprefix("matrix.")]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _github_env(root: Path) -> dict[str, str]:
    """What earlier steps wrote to $GITHUB_ENV (NAME=value lines)."""
    lines = (root / GITHUB_ENV.relative_to("/")).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _end_processes(root: Path) -> None:
    """Every process whose root is the overlay (servers the steps left running)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [pid for pid in _pids_under(root) if pid != os.getpid()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if pids:
            time.sleep(2)


def _pids_under(root: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "root").readlink() == root:
                    found.append(int(entry.name))
    return found


def _summary(results: list[tuple[str, str, float]]) -> int:
    table = "\n".join(f"  {name[:60]:<60} {outcome:<13} {s:7.1f}s" for name, outcome, s in results)
    _log(f"workflow replay:\n{table}")
    failed = [name for name, outcome, _ in results if outcome == "FAIL"]
    ran = [name for name, outcome, _ in results if outcome == "pass"]
    if failed or not ran:
        _log(f"replay failed: {', '.join(failed) or 'no step ran'}")
        return 1
    return 0


def _chroot(root: Path, command: list[str], *, capture: bool = False) -> str:
    return _run(
        ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={PATH}", *command], capture=capture
    )


def _run(command: list[str], *, capture: bool = False) -> str:
    finished = subprocess.run(command, capture_output=capture, text=True, check=False)
    if finished.returncode != 0:
        msg = f"replay: {' '.join(command)} failed ({finished.returncode}): {finished.stderr}"
        raise SystemExit(msg)
    return finished.stdout or ""


def _log(message: str) -> None:
    print(f"replay > {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

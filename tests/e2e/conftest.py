"""Fixtures for the end-to-end tests: the real `ecr-janitor` binary, built once,
run against the local ECR emulator with a clean environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from lambda_runtime import emulator_env

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
BUILD_TIMEOUT = 1800


def cargo_path() -> str:
    cargo = shutil.which("cargo") or shutil.which("cargo", path=str(Path.home() / ".cargo" / "bin"))
    if not cargo:
        pytest.fail("cargo was not found on PATH (nor in ~/.cargo/bin): install the Rust toolchain "
                    "(https://rustup.rs) to build ecr-janitor for the end-to-end tests", pytrace=False)
    return cargo


def base_path() -> str:
    """PATH for the processes we start: .venv/bin first (cargo-lambda), then cargo's, then ours."""
    parts = [str(VENV_BIN)]
    cargo = cargo_path()
    parts.append(str(Path(cargo).parent))
    parts.append(os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    return os.pathsep.join(parts)


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    """`cargo build --bins`, once per session; returns binary name -> path.

    ECR_JANITOR_BIN=/path/to/ecr-janitor skips the build and tests that binary, and
    the `bootstrap` next to it if there is one (the Lambda tests still need
    `cargo lambda watch`, which builds by itself)."""
    prebuilt = os.environ.get("ECR_JANITOR_BIN")
    if prebuilt:
        if not Path(prebuilt).is_file():
            pytest.fail(f"ECR_JANITOR_BIN={prebuilt} does not exist", pytrace=False)
        found = {"ecr-janitor": Path(prebuilt).resolve()}
        bootstrap = Path(prebuilt).with_name("bootstrap")
        if bootstrap.is_file():
            found["bootstrap"] = bootstrap.resolve()
        return found
    cargo = cargo_path()
    log = Path(tempfile.gettempdir()) / "ecr-janitor-e2e-build.log"
    with open(log, "wb") as out:
        proc = subprocess.run(
            [cargo, "build", "--bins", "--message-format=json-render-diagnostics"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=out, timeout=BUILD_TIMEOUT,
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        pytest.fail(f"`cargo build --bins` failed (exit {proc.returncode}); full log in {log}:\n{tail}",
                    pytrace=False)
    found: dict[str, Path] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            found[msg["target"]["name"]] = Path(msg["executable"])
    for name in ("ecr-janitor", "bootstrap"):
        default = REPO_ROOT / "target" / "debug" / name
        if name not in found and default.exists():
            found[name] = default
    if "ecr-janitor" not in found:
        pytest.fail("cargo build succeeded but produced no `ecr-janitor` binary", pytrace=False)
    return found


@pytest.fixture(scope="session")
def janitor_bin(binaries) -> Path:
    return binaries["ecr-janitor"]


@pytest.fixture(scope="session")
def bootstrap_bin(binaries) -> Path:
    """The Lambda binary (`bootstrap`), as deployed."""
    if "bootstrap" not in binaries:
        where = (f"next to ECR_JANITOR_BIN={os.environ['ECR_JANITOR_BIN']}" if os.environ.get("ECR_JANITOR_BIN")
                 else "in the output of `cargo build --bins`")
        pytest.fail(f"no `bootstrap` binary {where}", pytrace=False)
    return binaries["bootstrap"]


@dataclass
class Run:
    """One run of the binary. Unpacks as (code, report, stderr)."""

    code: int
    report: Optional[dict[str, Any]]
    stderr: str
    stdout: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.code, self.report, self.stderr))

    def describe(self) -> str:
        config = {k: v for k, v in self.env.items() if not k.startswith("AWS_") and k not in ("PATH", "HOME")}
        return (f"$ {' '.join(self.args)}  (config {config})\nexit {self.code}\n"
                f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}")


def clean_env(emu, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """A clean environment: no inherited AWS_* (or anything else) but PATH and HOME."""
    env = emulator_env(emu.endpoint, base_path())
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Janitor:
    def __init__(self, binary: Path, emu, tmp_path: Path) -> None:
        self.binary = binary
        self.emu = emu
        self.tmp_path = tmp_path
        self._n = 0

    def write_json(self, data: Any, name: Optional[str] = None) -> Path:
        self._n += 1
        path = self.tmp_path / (name or f"input-{self._n}.json")
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    def run(self, *args: str, env: Optional[dict[str, Any]] = None, timeout: float = 600,
            binary: Optional[Path] = None) -> Run:
        """Run ``binary`` (default: ecr-janitor) with ``args`` in a clean environment plus
        ``env`` (a None value unsets a variable)."""
        full_env = clean_env(self.emu, env)
        argv = [str(binary or self.binary), *map(str, args)]
        proc = subprocess.run(argv, env=full_env, cwd=self.tmp_path, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        stdout = proc.stdout.decode(errors="replace")
        stderr = proc.stderr.decode(errors="replace")
        try:
            report = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            report = None
        return Run(proc.returncode, report, stderr, stdout, argv, full_env)

    def sweep(self, *args: str, env: Optional[dict[str, Any]] = None, event: Any = None,
              timeout: float = 600) -> Run:
        argv = ["sweep", *args]
        if event is not None:
            path = event if isinstance(event, Path) else self.write_json(event)
            argv += ["--event", str(path)]
        return self.run(*argv, env=env, timeout=timeout)

    def plan(self, *args: str, env: Optional[dict[str, Any]] = None) -> Run:
        return self.run("plan", *args, env=env)


@pytest.fixture
def janitor(janitor_bin, emu, tmp_path) -> Janitor:
    return Janitor(janitor_bin, emu, tmp_path)

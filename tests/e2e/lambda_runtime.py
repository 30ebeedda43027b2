"""Run the `bootstrap` Lambda binary locally through cargo-lambda's runtime
emulator (`cargo lambda watch` + `cargo lambda invoke`), against the ECR
emulator. Used by tests/e2e/test_lambda.py and scripts/demo.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
FUNCTION = "bootstrap"
MARKER_VAR = "ECR_JANITOR_TEST_WATCH"


class LambdaError(RuntimeError):
    pass


def file_tail(path: Path, chars: int = 4000) -> str:
    """The last ``chars`` characters of a log file ("" when there is none yet)."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_path() -> str:
    """PATH with .venv/bin (cargo-lambda) first, then cargo's directory."""
    parts = [str(VENV_BIN)]
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    parts.append(str(Path(cargo).parent))
    parts.append(os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    return os.pathsep.join(parts)


def emulator_env(endpoint: str, path: str) -> dict[str, str]:
    """A clean environment pointed at the emulator: nothing inherited but PATH
    and HOME, so no AWS_* variable of the caller can reach a real account."""
    return {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_LOG": "info",
        "NO_COLOR": "1",
    }


def lambda_env(endpoint: str, config: Optional[dict[str, str]] = None) -> dict[str, str]:
    """emulator_env for cargo-lambda and the function, with cargo's own settings."""
    env = emulator_env(endpoint, tool_path())
    env["CARGO_TERM_COLOR"] = "never"
    for key in ("CARGO_HOME", "RUSTUP_HOME", "CARGO_TARGET_DIR", "RUSTUP_TOOLCHAIN"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(config or {})
    return env


class LambdaWatch:
    """`cargo lambda watch` on 127.0.0.1:<free port>, logs in a temp dir
    outside the repository, stopped by killing its process group."""

    def __init__(self, endpoint: str, config: Optional[dict[str, str]] = None,
                 log_dir: Optional[Path] = None) -> None:
        self.env = lambda_env(endpoint, config)
        self.marker = uuid.uuid4().hex
        self.env[MARKER_VAR] = self.marker
        self.port = free_port()
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="ecr-janitor-lambda-"))
        self.log_path = self.log_dir / "cargo-lambda-watch.log"
        self.proc: Optional[subprocess.Popen] = None
        self._log: Any = None

    def start(self, timeout: float = 300) -> "LambdaWatch":
        if shutil.which("cargo-lambda", path=self.env["PATH"]) is None:
            raise LambdaError(f"cargo-lambda is not in {VENV_BIN} (run `make` to create .venv)")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--ignore-changes",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port)],
            cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LambdaError(f"cargo lambda watch exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise LambdaError(f"cargo lambda watch did not listen on 127.0.0.1:{self.port} "
                          f"within {timeout:.0f}s:\n{self.log_tail()}")

    def invoke_raw(self, data_file: Optional[Path] = None, data: Optional[str] = None,
                   timeout: float = 900) -> subprocess.CompletedProcess:
        argv = ["cargo", "lambda", "invoke", FUNCTION, "--invoke-address", "127.0.0.1",
                "--invoke-port", str(self.port), "--output-format", "json"]
        if data_file is not None:
            argv += ["--data-file", str(data_file)]
        elif data is not None:
            argv += ["--data-ascii", data]
        return subprocess.run(argv, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def invoke(self, data_file: Optional[Path] = None, data: Optional[str] = None,
               timeout: float = 900) -> dict[str, Any]:
        """Invoke the function and return its response (the report)."""
        proc = self.invoke_raw(data_file, data, timeout)
        if proc.returncode != 0:
            raise LambdaError(f"cargo lambda invoke failed (exit {proc.returncode}):\n"
                              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n--- watch log ---\n{self.log_tail()}")
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise LambdaError(f"cargo lambda invoke printed no JSON:\n{proc.stdout[-3000:]}\n"
                              f"{proc.stderr[-3000:]}") from None

    def log_tail(self, chars: int = 4000) -> str:
        return file_tail(self.log_path, chars)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # The function instance (cargo run -> bootstrap) runs in a process group of its own;
        # watch normally ends it, this makes sure.
        _kill_marked(self.marker)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LambdaWatch":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment carries our marker: the
    function instances that watch started (in process groups of their own)."""
    token = f"{MARKER_VAR}={marker}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if token in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue

"""A minimal AWS Lambda Runtime API in front of the real `bootstrap` binary.

cargo-lambda's emulator (lambda_runtime.py) sends a fixed `Lambda-Runtime-Deadline-Ms`
of 600000 (a duration, not a time) and `function-arn` as the invoked function ARN, so a
function served by it has no deadline and no ARN. This one sends what AWS Lambda sends:
the deadline in milliseconds since the epoch, and the function's ARN. Used by the cursor
tests, which need both."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from lambda_runtime import file_tail

PREFIX = "/2018-06-01/runtime"


class Invocation:
    def __init__(self, payload: Any, deadline_ms: int, function_arn: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = json.dumps(payload).encode()
        self.deadline_ms = deadline_ms
        self.function_arn = function_arn
        self.done = threading.Event()
        self.ok = False
        self.body = b""


class RuntimeApi:
    """The Runtime API on 127.0.0.1:<free port> and `binary` polling it, with `env`."""

    def __init__(self, binary: Path, env: dict[str, str], function_arn: str, log_dir: Path) -> None:
        self.binary = binary
        self.function_arn = function_arn
        self.env = dict(env)
        self.log_path = Path(log_dir) / "bootstrap.log"
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.proc: Optional[subprocess.Popen] = None

    def _handler(self) -> type:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: bytes = b"", headers: Optional[dict[str, str]] = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404)
                while not api.stopping.is_set():
                    try:
                        inv = api.pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    api.in_flight[inv.request_id] = inv
                    return self.reply(200, inv.payload, {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
                    })
                self.reply(503)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if len(parts) == 3 and parts[0] == "invocation" and parts[1] in api.in_flight:
                    inv = api.in_flight.pop(parts[1])
                    inv.ok, inv.body = parts[2] == "response", body
                    inv.done.set()
                self.reply(202)

        return Handler

    def start(self) -> "RuntimeApi":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        name = self.function_arn.split(":")[6]
        env = self.env | {
            "AWS_LAMBDA_RUNTIME_API": f"{host}:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary)], env=env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def invoke(self, payload: Any, timeout_seconds: float, wait: float = 300) -> dict[str, Any]:
        """Invoke with `timeout_seconds` left before the deadline; the function's response."""
        deadline_ms = int((time.time() + timeout_seconds) * 1000)
        inv = Invocation(payload, deadline_ms, self.function_arn)
        self.pending.put(inv)
        if not inv.done.wait(wait):
            raise AssertionError(f"no response within {wait}s:\n{self.log_tail()}")
        if not inv.ok:
            raise AssertionError(f"the invocation failed: {inv.body!r}\n{self.log_tail()}")
        return json.loads(inv.body)

    def log_tail(self, chars: int = 4000) -> str:
        return file_tail(self.log_path, chars)

    def stop(self) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "RuntimeApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

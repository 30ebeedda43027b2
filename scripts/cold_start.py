#!/usr/bin/env python3
"""Local cold start of the `bootstrap` binary: process start to its first Lambda runtime
API poll (GET /2018-06-01/runtime/invocation/next), against a fake runtime API on
127.0.0.1, with a valid configuration.

    python3 scripts/cold_start.py target/release/bootstrap [--runs 20] [--bus]
    python3 scripts/cold_start.py target/release/bootstrap --invoke events/dry-run.json

--bus sets EVENT_BUS_NAME (the bootstrap then also builds an EventBridge client).
--invoke answers the first poll with the event instead, serves a registry (ECR
DescribeRepositories, DescribeImages) and an accepting EventBridge on the same port, and
prints what the function logged and returned: a smoke test of the logs, the metrics line and
the run event. The registry is empty, or with --images N one repository of N untagged images
pushed 30 days ago; then only the invocation's duration is printed (a CPU benchmark of the
SDK's parsing, the plan and the report).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT = "/2018-06-01/runtime/invocation/next"
# AWS JSON-protocol answers, by X-Amz-Target.
AWS_ANSWERS = {
    "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories": {"repositories": []},
    "AWSEvents.PutEvents": {"FailedEntryCount": 0, "Entries": [{"EventId": "local-1"}]},
}


class FakeApi(BaseHTTPRequestHandler):
    first_poll: float | None = None
    polled = threading.Event()
    event: bytes | None = None
    response = threading.Event()
    answer: bytes = b""
    calls: list[str] = []
    images = 0

    def log_message(self, *args):  # keep stderr for the function's output
        pass

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != NEXT:
            return self.reply(404, b"")
        cls = type(self)
        if cls.first_poll is None:
            cls.first_poll = time.perf_counter()
            cls.polled.set()
            if cls.event is not None:
                deadline = str(int(time.time() * 1000) + 300_000)
                return self.reply(200, cls.event, {
                    "Lambda-Runtime-Aws-Request-Id": "req-1",
                    "Lambda-Runtime-Deadline-Ms": deadline,
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:us-east-1:123456789012:function:ecr-janitor",
                })
        time.sleep(3600)  # no more work: the process is killed first

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target")
        if target:
            type(self).calls.append(target)
            answer = registry(target, json.loads(body or b"{}"), type(self).images)
            return self.reply(200, json.dumps(answer).encode(),
                              {"Content-Type": "application/x-amz-json-1.1"})
        type(self).answer = body  # .../invocation/req-1/response or /error
        self.reply(202, b"")
        type(self).response.set()


def registry(target: str, request: dict, images: int) -> dict:
    """The answer to an AWS call: one repository of `images` images when there are any."""
    if not images or not target.endswith(("DescribeRepositories", "DescribeImages")):
        return AWS_ANSWERS.get(target, {})
    if target.endswith("DescribeRepositories"):
        return {"repositories": [{"repositoryName": "bench", "registryId": "123456789012",
                                  "repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/bench"}]}
    start = int(request.get("nextToken") or 0)
    end = min(start + request.get("maxResults", 100), images)
    pushed = time.time() - 30 * 86400
    page = {"imageDetails": [{"registryId": "123456789012", "repositoryName": "bench",
                              "imageDigest": f"sha256:{i:064x}", "imagePushedAt": pushed - i,
                              "imageSizeInBytes": 50_000_000} for i in range(start, end)]}
    if end < images:
        page["nextToken"] = str(end)
    return page


def environment(port: int, bus: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUST_LOG"))}
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "ecr-janitor", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "DRY_RUN": "true",
    })
    if bus:
        env["EVENT_BUS_NAME"] = "ops"
    return env


def start(binary: str, bus: bool, event: bytes | None):
    FakeApi.first_poll, FakeApi.event = None, event
    FakeApi.polled.clear()
    FakeApi.response.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = environment(server.server_address[1], bus)
    # A file, not a pipe: a full pipe would block the function's logging.
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT)
    return server, proc, started, log


def logged(proc: subprocess.Popen, log) -> str:
    proc.kill()
    proc.wait()
    log.seek(0)
    return log.read().decode(errors="replace")


def cold_start_ms(binary: str, bus: bool) -> float:
    server, proc, started, log = start(binary, bus, None)
    try:
        if not FakeApi.polled.wait(10):
            sys.exit(f"no poll within 10 s:\n{logged(proc, log)}")
        return (FakeApi.first_poll - started) * 1000
    finally:
        logged(proc, log)
        server.shutdown()


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def invoke(binary: str, event_file: str, images: int) -> None:
    FakeApi.images = images
    with open(event_file, "rb") as f:
        server, proc, _, log = start(binary, True, f.read())
    try:
        if not FakeApi.response.wait(120):
            sys.exit(f"no response within 120 s:\n{logged(proc, log)[-3000:]}")
        took = (time.perf_counter() - FakeApi.first_poll) * 1000
        time.sleep(0.2)  # let the last log lines out
        cpu = cpu_ms(proc.pid)
    finally:
        output = logged(proc, log)
        server.shutdown()
    if images:
        return print(f"{binary}: one invocation over {images} images took {took:.0f} ms, "
                     f"the process used {cpu:.0f} ms of CPU")
    print(f"--- logged ---\n{output}--- AWS calls ---\n{FakeApi.calls}")
    print(f"--- returned ---\n{FakeApi.answer.decode()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bus", action="store_true", help="set EVENT_BUS_NAME")
    parser.add_argument("--invoke", metavar="EVENT_FILE")
    parser.add_argument("--images", type=int, default=0, help="with --invoke: registry size")
    args = parser.parse_args()
    if args.invoke:
        return invoke(args.binary, args.invoke, args.images)
    cold_start_ms(args.binary, args.bus)  # warm the page cache first
    times = sorted(cold_start_ms(args.binary, args.bus) for _ in range(args.runs))
    print(f"{args.binary}: {os.path.getsize(args.binary)} bytes; to first poll over {args.runs} runs: "
          f"median {statistics.median(times):.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()

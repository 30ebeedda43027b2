#!/usr/bin/env python3
"""ecr-janitor demo: a realistic registry in a local ECR emulator, swept once
by the real Lambda binary through cargo-lambda's Lambda runtime emulator.

    make demo            # or: .venv/bin/python scripts/demo.py

Everything runs on 127.0.0.1: the ECR emulator (moto, patched to behave like
ECR) in this process, `cargo lambda watch` serving the `bootstrap` binary, and
`cargo lambda invoke` sending it events/scheduled.json. No AWS account is used.

Exit status: 0 when the report and the registry agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

try:
    import ecr_emulator  # noqa: E402
    from lambda_runtime import LambdaError, LambdaWatch, tool_path  # noqa: E402
    from seeding import CI_HISTORY_SEED, DEFAULT_MAX_AGE_DAYS, ci_history, expires_by_default  # noqa: E402
except ImportError as e:  # moto/boto3 missing: not run with .venv's python
    sys.exit(f"demo: {e}. Run `make` first, then `make demo` (or .venv/bin/python scripts/demo.py).")


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def inventory(emu) -> dict[str, dict[str, dict]]:
    """repo -> digest -> imageDetail, read back through the ECR API."""
    return {repo: emu.images(repo) for repo in emu.repositories()}


def print_inventory(title: str, inv: dict[str, dict[str, dict]], now: datetime) -> None:
    print(f"\n{title}")
    header = f"  {'REPOSITORY':<16} {'IMAGES':>6} {'TAGGED':>6} {'UNTAGGED':>8} {f'UNTAGGED >{DEFAULT_MAX_AGE_DAYS}d':>13} {'SIZE':>10}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    totals = [0, 0, 0, 0, 0]
    for repo, images in inv.items():
        tagged = sum(1 for d in images.values() if d.get("imageTags"))
        untagged = len(images) - tagged
        old = sum(1 for d in images.values() if expires_by_default(d, now))
        size = sum(d.get("imageSizeInBytes", 0) for d in images.values())
        for i, v in enumerate((len(images), tagged, untagged, old, size)):
            totals[i] += v
        print(f"  {repo:<16} {len(images):>6} {tagged:>6} {untagged:>8} {old:>13} {human(size):>10}")
    print(f"  {'total':<16} {totals[0]:>6} {totals[1]:>6} {totals[2]:>8} {totals[3]:>13} {human(totals[4]):>10}")


def build_function() -> None:
    cargo = shutil.which("cargo", path=tool_path())
    if not cargo:
        sys.exit("demo: cargo not found; install the Rust toolchain first")
    print("\nBuilding the Lambda binary (cargo build --bin bootstrap)...", flush=True)
    proc = subprocess.run([cargo, "build", "--bin", "bootstrap"], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"demo: cargo build failed (exit {proc.returncode})")


def check_agreement(report: dict, before: dict, after: dict) -> list[str]:
    """Every way the report and the registry disagree."""
    problems = []
    if report.get("dryRun") is not False:
        problems.append(f"expected a real run (DRY_RUN=false), report says dryRun={report.get('dryRun')}")
    if not report.get("complete"):
        problems.append(f"run incomplete; not visited: {report.get('notVisited')}")
    listed = {r["name"]: r for r in report.get("repositories", [])}
    if sorted(listed) != sorted(before):
        problems.append(f"report lists {sorted(listed)}, registry has {sorted(before)}")
    for repo, images in before.items():
        entry = listed.get(repo)
        now = after.get(repo, {})
        if entry is None:
            if set(now) != set(images):
                problems.append(f"{repo}: not in the report, but changed")
            continue
        if entry.get("error"):
            problems.append(f"{repo}: error: {entry['error']}")
        expired = {e["imageDigest"] for e in entry.get("expired", [])}
        failed = {f["imageDigest"] for f in entry.get("failures", [])}
        unknown = expired - set(images)
        if unknown:
            problems.append(f"{repo}: expired images that never existed: {sorted(unknown)}")
        for d in sorted((expired - failed) & set(now)):
            problems.append(f"{repo}: {d} reported deleted but still there")
        for d in sorted(set(images) - expired - set(now)):
            problems.append(f"{repo}: {d} was kept by the report but is gone")
        for d in sorted(failed - set(now)):
            problems.append(f"{repo}: {d} reported failed but is gone")
        if entry.get("deleted", 0) + entry.get("alreadyGone", 0) + len(failed) != len(expired):
            problems.append(f"{repo}: deleted {entry.get('deleted')} + alreadyGone {entry.get('alreadyGone')} "
                            f"+ failed {len(failed)} != expired {len(expired)}")
        for e in entry.get("expired", []):
            d = images.get(e["imageDigest"])
            if d is not None and d.get("imageTags"):
                problems.append(f"{repo}: tagged image {e['imageDigest']} {d['imageTags']} expired by the "
                                f"untagged-only default retention")
    totals = report.get("totals", {})
    deleted = sum(r.get("deleted", 0) for r in listed.values())
    if totals.get("deleted") != deleted:
        problems.append(f"totals.deleted {totals.get('deleted')} != sum over repositories {deleted}")
    if deleted == 0:
        problems.append("nothing was deleted, although the registry holds untagged images older than "
                        f"{DEFAULT_MAX_AGE_DAYS} days")
    return problems


def serve(port: int, now: datetime, rng: random.Random) -> int:
    """A seeded emulator that stays up, so the Lambda can be run and invoked by hand."""
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before threads start: they inherit it
    emu = ecr_emulator.Emulator(port=port).start()
    try:
        ci_history(emu, now, rng)
        print_inventory(f"ECR emulator on {emu.endpoint}, seeded", inventory(emu), now)
        print("\nIn another terminal, point the janitor at it and run the Lambda locally:")
        print(f"  export AWS_ENDPOINT_URL={emu.endpoint} AWS_ACCESS_KEY_ID=test "
              "AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1")
        print("  make watch          # then, in a third terminal (same exports):")
        print("  make invoke EVENT=events/dry-run.json")
        print("\nCtrl-C stops the emulator.", flush=True)
        signal.sigwait(stop_signals)
        return 0
    finally:
        emu.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--event", default=str(ROOT / "events" / "scheduled.json"),
                        help="event file to invoke the function with (default: events/scheduled.json)")
    parser.add_argument("--seed", type=int, default=CI_HISTORY_SEED, help="random seed for the registry history")
    parser.add_argument("--quiet-report", action="store_true", help="do not print the full JSON report")
    parser.add_argument("--serve", type=int, metavar="PORT",
                        help="only seed the registry and keep the emulator on 127.0.0.1:PORT until "
                             "Ctrl-C, for `make watch` / `make invoke` by hand")
    args = parser.parse_args()

    now = datetime.now(timezone.utc)
    rng = random.Random(args.seed)
    if args.serve is not None:
        return serve(args.serve, now, rng)
    log_dir = Path(tempfile.mkdtemp(prefix="ecr-janitor-demo-"))

    build_function()
    emu = ecr_emulator.Emulator().start()
    watch = None
    try:
        print(f"\nECR emulator listening on {emu.endpoint} (moto, patched; loopback only)")
        ci_history(emu, now, rng)
        before = inventory(emu)
        print_inventory("Before: the registry after eight weeks of CI", before, now)

        config = {"DRY_RUN": "false"}
        print(f"\nStarting the Lambda runtime: cargo lambda watch (logs: {log_dir})")
        print(f"  environment: DRY_RUN=false, default retention (untagged images older than "
              f"{DEFAULT_MAX_AGE_DAYS} days), AWS_ENDPOINT_URL={emu.endpoint}")
        watch = LambdaWatch(emu.endpoint, config, log_dir=log_dir).start()
        print(f"Invoking: cargo lambda invoke bootstrap --data-file {os.path.relpath(args.event, ROOT)}")
        emu.clear_request_counts()
        report = watch.invoke(data_file=Path(args.event), timeout=1800)

        if not args.quiet_report:
            print("\nReport (the function's response):")
            print(json.dumps(report, indent=2))

        print("\nPer repository:")
        for r in report.get("repositories", []):
            line = (f"  {r['name']:<16} scanned {r['imagesScanned']:>3} "
                    f"(untagged {r['untaggedScanned']:>3})  expired {len(r['expired']):>3}  "
                    f"deleted {r['deleted']:>3}  freed {human(r['bytesFreed']):>9}")
            if r.get("failures"):
                line += f"  failures {len(r['failures'])}"
            if r.get("skipped"):
                line += f"  skipped: {r['skipped']}"
            if r.get("error"):
                line += f"  ERROR: {r['error']}"
            print(line)
        t = report.get("totals", {})
        print(f"  {'total':<16} deleted {t.get('deleted')} images, freed {human(t.get('bytesFreed', 0))}, "
              f"about ${t.get('estimatedMonthlySavingUsd', 0):.2f}/month of ECR storage")
        calls = emu.request_counts()
        print(f"  ECR API calls: {', '.join(f'{k} {v}' for k, v in sorted(calls.items())) or 'none'}")

        after = inventory(emu)
        print_inventory("After: what is left", after, now)

        problems = check_agreement(report, before, after)
        if problems:
            print("\nFAILED: the report and the registry disagree:")
            for p in problems:
                print(f"  - {p}")
            print(f"\ncargo-lambda log: {watch.log_path}")
            return 1
        print("\nOK: every image the report deleted is gone, every other image is still there.")
        return 0
    except LambdaError as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if watch is not None:
            watch.stop()
        emu.stop()


if __name__ == "__main__":
    sys.exit(main())

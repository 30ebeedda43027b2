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
import re
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
    from seeding import (CI_HISTORY_SEED, DEFAULT_MAX_AGE_DAYS, ci_history,  # noqa: E402
                         expires_by_default, in_use_by_ecs_and_lambda)
except ImportError as e:  # moto/boto3 missing: not run with .venv's python
    sys.exit(f"demo: {e}. Run `make` first, then `make demo` (or .venv/bin/python scripts/demo.py).")


WIDTH = 100  # the widest line the summary prints


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters (ending in "…" when cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def name_width(names) -> int:
    return min(max([len("REPOSITORY"), *map(len, names)]), 26)


def inventory(emu) -> dict[str, dict[str, dict]]:
    """repo -> digest -> imageDetail, read back through the ECR API."""
    return {repo: emu.images(repo) for repo in emu.repositories()}


def print_inventory(title: str, inv: dict[str, dict[str, dict]], now: datetime) -> None:
    w = name_width(inv)
    old_header = f"UNTAGGED >{DEFAULT_MAX_AGE_DAYS}d"
    print(f"\n{title}")
    header = f"  {'REPOSITORY':<{w}} {'IMAGES':>6} {'TAGGED':>6} {'UNTAGGED':>8} {old_header:>13} {'SIZE':>10}"
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
        print(f"  {shorten(repo, w):<{w}} {len(images):>6} {tagged:>6} {untagged:>8} {old:>13} {human(size):>10}")
    print(f"  {'total':<{w}} {totals[0]:>6} {totals[1]:>6} {totals[2]:>8} {totals[3]:>13} {human(totals[4]):>10}")


def kept_count(entry: dict) -> int:
    """Images the run looked at and left: a dry run's `kept` list, else scanned minus expired."""
    if entry.get("kept") is not None:
        return len(entry["kept"])
    return max(entry.get("imagesScanned", 0) - len(entry.get("expired", [])), 0)


def print_run(report: dict, calls: dict[str, int]) -> None:
    """The report as a table (a line per repository, then the totals), then its
    errors and skips, each on one line."""
    repos = report.get("repositories", [])
    w = name_width([r["name"] for r in repos])
    mode = "dry run, nothing deleted" if report.get("dryRun") else "DRY_RUN=false"
    print(f"\nThe run, from the report ({mode}; {report.get('durationMs', 0) / 1000:.1f} s):")
    header = (f"  {'REPOSITORY':<{w}} {'SCANNED':>7} {'EXPIRED':>7} {'DELETED':>7} {'KEPT':>5} "
              f"{'FAILED':>6} {'FREED':>9}  NOTE")
    rule = "  " + "-" * (len(header) - 2)

    def row(name, scanned, expired, deleted, kept, failed, freed, note=""):
        return (f"  {shorten(name, w):<{w}} {scanned:>7} {expired:>7} {deleted:>7} {kept:>5} {failed:>6} "
                f"{human(freed):>9}  {note}").rstrip()

    print(header)
    print(rule)
    for r in repos:
        note = ("error" if r.get("error") else "skipped" if r.get("skipped")
                else f"{r['alreadyGone']} already gone" if r.get("alreadyGone") else "")
        print(row(r["name"], r.get("imagesScanned", 0), len(r.get("expired", [])), r.get("deleted", 0),
                  kept_count(r), len(r.get("failures", [])), r.get("bytesFreed", 0), note))
    print(rule)
    t = report.get("totals", {})
    errors, skipped = t.get("repositoryErrors", 0), sum(1 for r in repos if r.get("skipped"))
    notes = [f"{errors} error{'s' * (errors != 1)}" if errors else "", f"{skipped} skipped" if skipped else ""]
    print(row("total", t.get("imagesScanned", 0), t.get("expired", 0), t.get("deleted", 0),
              sum(map(kept_count, repos)), t.get("failed", 0), t.get("bytesFreed", 0),
              ", ".join(n for n in notes if n)))

    lines = ["SCANNED: every image, tagged or not (tagged indexes tell which untagged images are theirs)",
             f"Estimated saving: about ${t.get('estimatedMonthlySavingUsd', 0):.2f}/month of ECR storage"]
    if t.get("alreadyGone"):
        lines.append(f"Already gone (deleted by someone else during the run): {t['alreadyGone']}")
    if not report.get("complete", True):
        lines.append(f"INCOMPLETE: the deadline came near; not visited: {', '.join(report.get('notVisited', []))}")
    if report.get("requestedNotFound"):
        lines.append(f"Requested but not found: {', '.join(report['requestedNotFound'])}")
    lines.append(f"ECR API calls: {', '.join(f'{k} {v}' for k, v in sorted(calls.items())) or 'none'}")
    for line in lines:
        print("  " + shorten(line, WIDTH - 2))
    notes = [f"{r['name']}: error: {r['error']}" for r in repos if r.get("error")]
    notes += [f"{r['name']}: skipped: {r['skipped']}" for r in repos if r.get("skipped")]
    if notes:
        print("\nErrors and skips (one line each; the report file has them in full):")
        for note in notes:
            print("  " + shorten(note, WIDTH - 2))


GRAPH_REPOSITORY = "platform/gateway"
IN_USE_REPOSITORY = "api/orders"


def print_in_use(dry_run: dict) -> None:
    """The images the dry run keeps only because ECS or Lambda uses them."""
    print("\nKept because they are in use (from the dry run):")
    found = 0
    for r in dry_run.get("repositories", []):
        for k in r.get("kept") or []:
            if k["reason"].startswith("in use by "):
                found += 1
                print(f"  {shorten(r['name'], 16):<16} {k['imageDigest'][7:19]} {k['reason']}")
    if not found:
        print("  (none)")
SHORT_DIGEST = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")


def print_reasons(dry_run: dict, repo: str) -> None:
    """Each image of one repository with what the dry run decided and why: multi-arch
    indexes, their platform and attestation manifests, and signatures follow each other."""
    entry = next((r for r in dry_run.get("repositories", []) if r["name"] == repo), None)
    if entry is None:
        print(f"\n(the dry run has no {repo})")
        return
    rows = [("expire", e) for e in entry.get("expired", [])] + [("keep", k) for k in entry.get("kept") or []]
    rows.sort(key=lambda r: r[1]["imagePushedAt"])
    print(f"\nWhy, in {repo} (multi-arch images with attestations and signatures), from the dry run:")
    for action, e in rows:
        tags = ",".join(e["imageTags"]) or "-"
        reason = SHORT_DIGEST.sub(r"\1", e["reason"])  # digests as `docker images` shows them
        line = f"{action:<6} {e['imageDigest'][7:19]} {e['imagePushedAt'][:10]} {shorten(tags, 14):<14} {reason}"
        print("  " + shorten(line, WIDTH - 2))
    print(f"  dry run: {len(entry.get('expired', []))} to delete, {len(entry.get('kept') or [])} to keep")


def write_report(report: dict, path: Path) -> str:
    """Write the full report as JSON; returns how to name the file to the reader."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    path.write_text(text)
    try:
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return f"{shown} ({text.count(chr(10)):,} lines of JSON)"


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
            problems.append(f"{repo}: error: {shorten(entry['error'], 200)}")
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
        print(f"  export AWS_ENDPOINT_URL={emu.endpoint} AWS_ACCESS_KEY_ID=test \\\n"
              "         AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1")
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
    parser.add_argument("--report", type=Path, default=ROOT / ".demo" / "report.json",
                        help="where to write the full JSON report (default: .demo/report.json)")
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
        running = in_use_by_ecs_and_lambda(emu, IN_USE_REPOSITORY, now)
        print(f"\nIn use: ECS service prod/orders-api and Lambda function orders-worker:1 run "
              f"{IN_USE_REPOSITORY}@{running[:19]}…, untagged and {DEFAULT_MAX_AGE_DAYS}+ days old")
        before = inventory(emu)
        print_inventory("Before: the registry after eight weeks of CI", before, now)

        config = {"DRY_RUN": "false"}
        print(f"\nStarting the Lambda runtime: cargo lambda watch (logs: {log_dir})")
        print(f"  environment: DRY_RUN=false, default retention (untagged images older than "
              f"{DEFAULT_MAX_AGE_DAYS} days),")
        print(f"               AWS_ENDPOINT_URL={emu.endpoint}")
        watch = LambdaWatch(emu.endpoint, config, log_dir=log_dir).start()
        dry_event = ROOT / "events" / "dry-run.json"
        print(f"Invoking first: cargo lambda invoke bootstrap --data-file {os.path.relpath(dry_event, ROOT)}")
        dry = watch.invoke(data_file=dry_event, timeout=1800)
        print_reasons(dry, GRAPH_REPOSITORY)
        print_in_use(dry)
        print(f"\nInvoking: cargo lambda invoke bootstrap --data-file {os.path.relpath(args.event, ROOT)}")
        emu.clear_request_counts()
        report = watch.invoke(data_file=Path(args.event), timeout=1800)

        print(f"\nFull report (the function's response): {write_report(report, args.report)}")
        print_run(report, emu.request_counts())

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

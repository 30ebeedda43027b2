#!/usr/bin/env python3
"""`make bench`: ecr-janitor on large emulated registries, side by side with a boto3 script.

For each scenario (repositories × images, ~30% of them expired untagged images) and each
added latency per ECR call, the registry is seeded in-process, then swept by the release
CLI (`target/release/ecr-janitor sweep`, deleting) and, on an identical registry, by
bench/boto3_janitor.py. Each run is checked: exactly the expired images must be gone (a
wrong result makes this script exit non-zero; timing never does). It prints a table and
writes bench/RESULTS.md, with the planner micro-benchmark's figures from criterion
(target/criterion/planner, written by `cargo bench --bench planner`) when present.

Usage: bench/run.py [--scenarios 1000x100,10x20000,1x100000] [--latencies 0,20] [--quick]
                    [--boto3-threads N] [--janitor PATH] [--results PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "emulator"), str(ROOT / "tests" / "e2e"), str(ROOT / "bench")]

import ecr_emulator  # noqa: E402
import emulator_speedups as speedups  # noqa: E402
from lambda_runtime import emulator_env  # noqa: E402
from seeding import DEFAULT_MAX_AGE_DAYS  # noqa: E402

DEFAULT_SCENARIOS = "1000x100,10x20000,1x100000"
QUICK_SCENARIOS = "100x100,10x2000,1x10000"
CONCURRENCY = 8
PAGE = 1000  # DescribeRepositories / DescribeImages per page
BATCH = 100  # BatchDeleteImage ids per call (and DescribeImages imageIds)
TARGET_SPEEDUP = 3.0  # with 20 ms latency, janitor at least this many times faster than boto3
PLANNER_TARGET_S = 0.2  # per million images


# --------------------------------------------------------------------------
# Scenarios and seeding
# --------------------------------------------------------------------------

@dataclass
class Scenario:
    repos: int
    images: int  # per repository

    @property
    def name(self) -> str:
        return f"{self.repos:,} × {self.images:,}"

    @property
    def expired_per_repo(self) -> int:
        return sum(1 for i in range(self.images) if _kind(i) == "expired")

    def minimum_calls(self) -> int:
        """DescribeRepositories pages, DescribeImages pages per repository, BatchGetImage
        per 100 indexes (none here), and per 100 deletions one BatchDeleteImage plus the
        DescribeImages re-check before it."""
        per_repo = math.ceil(self.images / PAGE) + 2 * math.ceil(self.expired_per_repo / BATCH)
        return math.ceil(self.repos / PAGE) + self.repos * per_repo


def parse_scenarios(text: str) -> list[Scenario]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        repos, _, images = part.lower().partition("x")
        out.append(Scenario(int(repos.replace("_", "")), int(images.replace("k", "000").replace("_", ""))))
    return out


def _kind(i: int) -> str:
    """Per 20 images: 6 expired untagged, 7 recent untagged, 7 tagged (30/35/35)."""
    slot = i % 20
    return "expired" if slot < 6 else "recent" if slot < 13 else "tagged"


@dataclass
class Registry:
    """A seeded registry, kept so that every run starts from the same one."""

    scenario: Scenario
    images: dict[str, list[tuple[Any, list[str], Optional[str]]]] = field(default_factory=dict)
    expired: dict[str, set[str]] = field(default_factory=dict)
    kept: dict[str, set[str]] = field(default_factory=dict)


def seed(emu: Any, scenario: Scenario) -> Registry:
    """Bulk-seed the scenario; return it with what a default sweep must delete."""
    emu.reset()
    registry = Registry(scenario)
    limit = DEFAULT_MAX_AGE_DAYS
    for r in range(scenario.repos):
        name = f"team-{r % 37:02d}/service-{r:04d}" if scenario.repos > 1 else "monorepo/app"
        specs = []
        for i in range(scenario.images):
            kind = _kind(i)
            hours = (i * 7) % 24
            if kind == "expired":  # a day past the retention, up to ~2 months
                specs.append(((), timedelta(days=limit + 1 + (i % 45), hours=hours)))
            elif kind == "recent":  # up to a day short of the retention
                specs.append(((), timedelta(days=(i % (limit - 1)), hours=hours)))
            else:  # tagged, of any age; every fifth with two tags
                tags = (f"v{i}", f"build-{i}") if i % 5 == 0 else (f"v{i}",)
                specs.append((tags, timedelta(days=1 + i % 90, hours=hours)))
        digests = emu.bulk_push(name, specs)
        registry.expired[name] = {d for d, (i, _) in zip(digests, enumerate(specs)) if _kind(i) == "expired"}
        registry.kept[name] = set(digests) - registry.expired[name]
    with emu._backend_lock:
        for name, repo in emu.backend.repositories.items():
            speedups.track(repo)
            registry.images[name] = [(image, list(image.image_tags), image.image_tag) for image in repo.images]
    return registry


def restore(emu: Any, registry: Registry) -> None:
    """Put the registry back as seeded (same image objects, tags), with no request counts."""
    emu.reset()
    with emu._backend_lock:
        backend = emu.backend
        for name, images in registry.images.items():
            emu.create_repository(name)
            for image, tags, tag in images:
                image.image_tags = list(tags)
                image.image_tag = tag
            backend.repositories[name].images = speedups.TrackedImages(image for image, _, _ in images)
    emu.clear_request_counts()


def prewarm(emu: Any, registry: Registry) -> None:
    """List every repository once, uncounted, so that the emulator's serialization cache
    holds every imageDetail before anything is timed."""
    client = emu.client(counted=False)
    for name in registry.images:
        for _ in client.get_paginator("describe_images").paginate(
                repositoryName=name, PaginationConfig={"PageSize": PAGE}):
            pass


# --------------------------------------------------------------------------
# Running a client and measuring it
# --------------------------------------------------------------------------

@dataclass
class Measured:
    wall: float
    cpu: float
    max_rss_kb: int
    exit_code: int
    stdout: str
    stderr: str
    calls: dict[str, int]
    emulator_busy: float
    wrong: list[str]

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def measure_tool() -> Path:
    """bench/measure.c, compiled (once) into target/bench/measure."""
    source = ROOT / "bench" / "measure.c"
    binary = ROOT / "target" / "bench" / "measure"
    if not binary.is_file() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def run_measured(emu: Any, argv: list[str], env: dict[str, str], timeout: float) -> Measured:
    """Run ``argv`` under bench/measure.c (its own peak RSS and CPU time, from wait4)."""
    result_file = ROOT / "target" / "bench" / "last-run.rusage"
    result_file.unlink(missing_ok=True)
    busy_before = speedups.busy_seconds()
    started = time.perf_counter()
    proc = subprocess.Popen([str(measure_tool()), str(result_file), *argv], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    try:
        code, rss, user, system = result_file.read_text().split()
        exit_code, max_rss_kb, cpu = int(code), int(rss), float(user) + float(system)
    except (OSError, ValueError):
        exit_code, max_rss_kb, cpu = proc.returncode or -1, 0, 0.0
    return Measured(
        wall=wall, cpu=cpu, max_rss_kb=max_rss_kb, exit_code=exit_code,
        stdout=stdout.decode(errors="replace"), stderr=stderr.decode(errors="replace"),
        calls=emu.request_counts("ecr"), emulator_busy=speedups.busy_seconds() - busy_before,
        wrong=[],
    )


def check_registry(emu: Any, registry: Registry) -> list[str]:
    """What differs from 'exactly the expired images are gone'."""
    problems = []
    snapshot = emu.snapshot()
    for name, kept in registry.kept.items():
        left = set(snapshot.get(name, {}))
        if left != kept:
            missing, extra = kept - left, left - kept
            problems.append(f"{name}: {len(missing)} kept image(s) gone, {len(extra)} expired image(s) left")
    return problems


def base_env(emu: Any) -> dict[str, str]:
    env = emulator_env(emu.endpoint, os.environ.get("PATH", "/usr/bin:/bin"))
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    return env


def run_janitor(emu: Any, registry: Registry, janitor: Path, timeout: float) -> Measured:
    env = base_env(emu)
    env.update({"DRY_RUN": "false", "PROTECT_IN_USE": "none", "MAX_DELETIONS_PER_RUN": "off",
                "MAX_CONCURRENCY": str(CONCURRENCY), "RUST_LOG": "warn"})
    m = run_measured(emu, [str(janitor), "sweep"], env, timeout)
    m.wrong = check_registry(emu, registry)
    expected = sum(len(e) for e in registry.expired.values())
    if m.exit_code != 0:
        m.wrong.append(f"exit code {m.exit_code}: {m.stderr[-2000:]}")
    else:
        try:
            totals = json.loads(m.stdout)["totals"]
        except (ValueError, KeyError) as e:
            m.wrong.append(f"no report on stdout ({e})")
        else:
            if totals.get("deleted") != expected or totals.get("expired") != expected:
                m.wrong.append(f"report: expired {totals.get('expired')}, deleted {totals.get('deleted')}, "
                               f"expected {expected}")
    return m


def run_boto3(emu: Any, registry: Registry, threads: int, timeout: float) -> Measured:
    env = base_env(emu)
    argv = [sys.executable, str(ROOT / "bench" / "boto3_janitor.py"), "--max-age-days", str(DEFAULT_MAX_AGE_DAYS)]
    if threads > 1:
        argv += ["--threads", str(threads)]
    m = run_measured(emu, argv, env, timeout)
    m.wrong = check_registry(emu, registry)
    if m.exit_code != 0:
        m.wrong.append(f"exit code {m.exit_code}: {m.stderr[-2000:]}")
    return m


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@dataclass
class Row:
    scenario: Scenario
    latency_ms: int
    janitor: Measured
    boto3: Optional[Measured]
    boto3_threaded: Optional[Measured]
    threads: int = 0

    @property
    def bound(self) -> float:
        """Latency-bound limit: every call's latency, CONCURRENCY at a time."""
        return self.janitor.total_calls / CONCURRENCY * self.latency_ms / 1000

    @property
    def chain_bound(self) -> float:
        """What the janitor's way of working allows: a repository's listing pages come one
        after the other (each needs the previous token), then its delete batches, each a
        re-check and a delete in a row, up to CONCURRENCY batches at once; and the whole
        run's calls never more than CONCURRENCY at once (the latency bound)."""
        sc = self.scenario
        pages = max(1, math.ceil(sc.images / PAGE))
        batches = math.ceil(sc.expired_per_repo / BATCH)
        per_repo = pages + 2 * math.ceil(batches / CONCURRENCY)
        return max(self.bound, (math.ceil(sc.repos / PAGE) + per_repo) * self.latency_ms / 1000)

    @property
    def speedup(self) -> Optional[float]:
        return self.boto3.wall / self.janitor.wall if self.boto3 else None


def planner_figures() -> list[tuple[str, float]]:
    """(benchmark, mean seconds per iteration of one million images) from criterion."""
    base = ROOT / "target" / "criterion" / "planner"
    out = []
    for name in ("plan_untagged", "plan_five_rules", "decide_untagged", "decide_five_rules"):
        estimates = base / name / "new" / "estimates.json"
        if estimates.is_file():
            mean_ns = json.loads(estimates.read_text())["mean"]["point_estimate"]
            out.append((name, mean_ns / 1e9))
    return out


def fmt_calls(calls: dict[str, int]) -> str:
    order = ["DescribeRepositories", "DescribeImages", "BatchGetImage", "BatchDeleteImage"]
    keys = [k for k in order if k in calls] + sorted(k for k in calls if k not in order)
    return ", ".join(f"{k} {calls[k]:,}" for k in keys)


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def table(rows: list[Row]) -> list[str]:
    threads = next((r.threads for r in rows if r.boto3_threaded), 0)
    head = ["scenario (repos × images)", "latency", "janitor wall s", "janitor CPU s", "peak RSS MB",
            "ECR calls", "minimum", "calls ÷ min", "latency bound s", "boto3 wall s",
            *([f"boto3 ×{threads} threads wall s"] if threads else []),
            "janitor ÷ boto3", "speed-up vs boto3", "≥3× faster", "emulator busy s (janitor / boto3)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        j, b, t = row.janitor, row.boto3, row.boto3_threaded
        minimum = row.scenario.minimum_calls()
        cells = [
            row.scenario.name, f"{row.latency_ms} ms", f"{j.wall:.2f}", f"{j.cpu:.2f}", mb(j.max_rss_kb),
            f"{j.total_calls:,}", f"{minimum:,}", f"{j.total_calls / minimum:.2f}",
            f"{row.bound:.2f}" if row.latency_ms else "–",
            f"{b.wall:.2f}" if b else "–",
            *([f"{t.wall:.2f}" if t else "–"] if threads else []),
            f"{j.wall / b.wall:.2f}" if b else "–",
            f"{b.wall / j.wall:.1f}×" if b else "–",
            (("yes" if row.speedup >= TARGET_SPEEDUP else "no") if b and row.latency_ms >= 20 else "–"),
            f"{j.emulator_busy:.1f} / {b.emulator_busy:.1f}" if b else f"{j.emulator_busy:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def details(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        label = f"{row.scenario.name}, {row.latency_ms} ms"
        lines.append(f"- {label}: janitor {fmt_calls(row.janitor.calls)}")
        if row.boto3:
            b = row.boto3
            lines.append(f"  boto3 (sequential): {fmt_calls(b.calls)}; CPU {b.cpu:.2f} s, peak RSS {mb(b.max_rss_kb)} MB")
        if row.boto3_threaded:
            t = row.boto3_threaded
            lines.append(f"  boto3 ({row.threads} threads): wall {t.wall:.2f} s, {fmt_calls(t.calls)}; "
                         f"CPU {t.cpu:.2f} s, peak RSS {mb(t.max_rss_kb)} MB")
        if row.latency_ms:
            lines.append(f"  latency bound {row.bound:.2f} s: janitor wall ÷ bound = {row.janitor.wall / row.bound:.1f}; "
                         f"with each repository's listing pages in sequence, then its batches (how the janitor works) the bound is "
                         f"{row.chain_bound:.2f} s: wall ÷ that = {row.janitor.wall / row.chain_bound:.1f}")
    return lines


def planner_lines() -> list[str]:
    figures = planner_figures()
    if not figures:
        return ["(no criterion results under target/criterion/planner: run `cargo bench --bench planner`)"]
    lines = ["| benchmark (1,000,000 images) | mean time | target < 0.2 s |", "|---|---|---|"]
    for name, seconds in figures:
        lines.append(f"| `{name}` | {seconds:.3f} s | {'yes' if seconds < PLANNER_TARGET_S else 'no'} |")
    return lines


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


# --------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description="ecr-janitor sweep benchmark (see bench/RESULTS.md)")
    parser.add_argument("--scenarios", default=None,
                        help=f"comma list of REPOSxIMAGES (default {DEFAULT_SCENARIOS})")
    parser.add_argument("--latencies", default="0,20", help="added latency per ECR call, ms (default 0,20)")
    parser.add_argument("--quick", action="store_true", help=f"smaller scenarios: {QUICK_SCENARIOS}")
    parser.add_argument("--boto3-threads", type=int, default=CONCURRENCY,
                        help=f"also run the boto3 script with this many threads (default {CONCURRENCY}; 0: not)")
    parser.add_argument("--no-boto3", action="store_true", help="skip the boto3 comparison")
    parser.add_argument("--janitor", type=Path, default=ROOT / "target" / "release" / "ecr-janitor")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    parser.add_argument("--make-started", type=float, default=None,
                        help="epoch seconds `make bench` started (its total goes into RESULTS.md)")
    args = parser.parse_args()

    if not args.janitor.is_file():
        print(f"{args.janitor} not found: run `cargo build --release --bin ecr-janitor`", file=sys.stderr)
        return 2
    scenarios = parse_scenarios(args.scenarios or (QUICK_SCENARIOS if args.quick else DEFAULT_SCENARIOS))
    latencies = [int(x) for x in args.latencies.split(",") if x.strip()]
    bench_started = time.perf_counter()
    started_at = datetime.now(timezone.utc)

    emu = ecr_emulator.Emulator().start()
    speedups.install(emu)
    speedups.self_check(emu)
    speedups.set_enabled(True)
    print("emulator speed-ups: same answers as without them (self-check passed)", flush=True)

    rows: list[Row] = []
    failures: list[str] = []
    for scenario in scenarios:
        t = time.perf_counter()
        registry = seed(emu, scenario)
        prewarm(emu, registry)
        print(f"\n{scenario.name}: seeded {scenario.repos * scenario.images:,} images "
              f"({sum(map(len, registry.expired.values())):,} expired) in {time.perf_counter() - t:.1f} s",
              flush=True)
        for latency in latencies:
            def prepared() -> None:
                restore(emu, registry)
                emu.latency = latency / 1000
                # The seeded registry is millions of objects the garbage collector would
                # otherwise walk again and again while a run is measured: set them aside.
                gc.collect()
                gc.freeze()

            prepared()
            j = run_janitor(emu, registry, args.janitor, args.timeout)
            print(f"  {latency:>3} ms  janitor  {j.wall:7.2f} s  CPU {j.cpu:6.2f} s  RSS {mb(j.max_rss_kb):>4} MB  "
                  f"{j.total_calls:,} calls (min {scenario.minimum_calls():,})  emulator busy {j.emulator_busy:.1f} s",
                  flush=True)
            b = bt = None
            if not args.no_boto3:
                prepared()
                b = run_boto3(emu, registry, 1, args.timeout)
                print(f"  {latency:>3} ms  boto3    {b.wall:7.2f} s  CPU {b.cpu:6.2f} s  RSS {mb(b.max_rss_kb):>4} MB  "
                      f"{b.total_calls:,} calls  emulator busy {b.emulator_busy:.1f} s  "
                      f"→ speed-up {b.wall / j.wall:.1f}×", flush=True)
                if args.boto3_threads > 1:
                    prepared()
                    bt = run_boto3(emu, registry, args.boto3_threads, args.timeout)
                    print(f"  {latency:>3} ms  boto3×{args.boto3_threads} {bt.wall:7.2f} s  CPU {bt.cpu:6.2f} s  "
                          f"{bt.total_calls:,} calls", flush=True)
            for who, m in (("janitor", j), ("boto3", b), (f"boto3 ×{args.boto3_threads}", bt)):
                if m is not None and m.wrong:
                    failures.extend(f"{scenario.name}, {latency} ms, {who}: {w}" for w in m.wrong)
                    print(f"  WRONG RESULT ({who}): " + "; ".join(m.wrong[:5]), flush=True)
            rows.append(Row(scenario, latency, j, b, bt, args.boto3_threads))
    emu.stop()
    total = time.perf_counter() - bench_started

    lines = table(rows)
    print("\n" + "\n".join(lines))
    print("\n" + "\n".join(details(rows)))
    print("\nplanner (criterion):\n" + "\n".join(planner_lines()))
    for row in rows:
        if row.latency_ms >= 20 and row.speedup is not None:
            verdict = "yes" if row.speedup >= TARGET_SPEEDUP else "NO"
            print(f"{row.scenario.name} at {row.latency_ms} ms: janitor ≥{TARGET_SPEEDUP:.0f}× faster than boto3? "
                  f"{verdict} ({row.speedup:.1f}×); {row.janitor.wall / row.bound:.1f}× the latency bound "
                  f"({row.bound:.2f} s)")
    print(f"\nbench took {total / 60:.1f} min")

    overall = time.time() - args.make_started if args.make_started else None
    write_results(args.results, rows, started_at, total, overall, failures)
    print(f"wrote {args.results.relative_to(ROOT) if args.results.is_relative_to(ROOT) else args.results}")
    if failures:
        print("\nWRONG RESULTS:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


def meaning(rows: list[Row]) -> str:
    """One paragraph, from this run's numbers."""
    if not rows:
        return "No sweeps were run."
    ratios = [r.janitor.total_calls / r.scenario.minimum_calls() for r in rows]
    parts = [
        "The janitor made exactly the minimum number of ECR calls in every run (calls ÷ minimum 1.00): one "
        "listing call per 1,000 images and, per 100 deletions, one BatchDeleteImage plus the DescribeImages "
        "re-check that makes sure no image was tagged since it was planned (the boto3 script makes the same "
        "calls without the re-check)."
        if all(abs(x - 1) < 1e-9 for x in ratios) else
        f"Calls ÷ minimum ranged from {min(ratios):.2f} to {max(ratios):.2f}."]
    slow = [r for r in rows if r.latency_ms >= 20 and r.boto3]
    if slow:
        lat = slow[0].latency_ms
        speed = "; ".join(f"{r.scenario.name}: {r.speedup:.1f}×" for r in slow)
        met = [r for r in slow if r.speedup >= TARGET_SPEEDUP]
        parts.append(
            f"With {lat} ms per call the janitor was faster than the sequential boto3 script by {speed}; "
            f"{len(met)} of {len(slow)} scenarios reach the expected {TARGET_SPEEDUP:.0f}×.")
        threaded = [r for r in slow if r.boto3_threaded]
        if threaded:
            versus = "; ".join(f"{r.scenario.name}: {r.janitor.wall:.1f} s vs {r.boto3_threaded.wall:.1f} s"
                               for r in threaded)
            calls = "; ".join(f"{r.boto3_threaded.total_calls:,} vs {r.janitor.total_calls:,}" for r in threaded)
            parts.append(
                f"The same script with {threaded[0].threads} threads (repositories in parallel, like the janitor) "
                f"compares as {versus} (janitor vs script): it makes fewer calls ({calls}), since it re-checks "
                f"nothing before deleting, and both queue at the same single-threaded emulator.")
        bounds = "; ".join(
            f"{r.scenario.name}: {r.janitor.wall:.1f} s vs {r.bound:.1f} s (in-sequence bound {r.chain_bound:.1f} s)"
            for r in slow)
        parts.append(
            f"Against the latency-bound limit (calls ÷ {CONCURRENCY} × latency) the janitor took {bounds}. "
            f"MAX_CONCURRENCY bounds the ECR calls in flight for the whole run, and within a repository the "
            f"delete batches of a wave run side by side, but some calls must still wait for others: listing pages "
            f"follow each other (each needs the previous token) and each batch is a re-check, then its delete. "
            f"So a run takes at least the in-sequence bound: per repository, its listing pages plus "
            f"2 × ⌈batches ÷ {CONCURRENCY}⌉ calls, times the latency (or the latency bound, when larger).")
        for r in slow:
            if r.speedup >= TARGET_SPEEDUP:
                continue
            needed = r.boto3.wall / TARGET_SPEEDUP
            parts.append(
                f"{r.scenario.name} misses {TARGET_SPEEDUP:.0f}×: the sequential script took {r.boto3.wall:.1f} s, "
                f"so {TARGET_SPEEDUP:.0f}× needed {needed:.1f} s; the janitor's in-sequence bound alone is "
                f"{r.chain_bound:.1f} s of latency, and the emulator, serving one request at a time, was busy for "
                f"{r.janitor.emulator_busy:.1f} s of the janitor's {r.janitor.wall:.1f} s (its "
                f"{r.janitor.total_calls:,} calls include {r.janitor.total_calls - r.boto3.total_calls:,} "
                f"re-checks the script does not make), while the script spends most of its time waiting on its own "
                f"calls one after the other.")
    busy = [(r, r.janitor.emulator_busy / r.janitor.wall) for r in rows if r.janitor.wall > 0]
    if busy:
        worst = max(busy, key=lambda x: x[1])
        parts.append(
            f"The emulator serves one request at a time (moto is single-threaded here) and was busy for up to "
            f"{worst[1]:.0%} of a janitor run ({worst[0].scenario.name}, {worst[0].latency_ms} ms): at 0 ms the "
            f"times are largely the emulator's, and its queue also caps what 8 concurrent requests can gain at "
            f"20 ms; the machine's 2 cores were shared with other work, so expect run-to-run noise of tens of "
            f"percent.")
    big = [r for r in rows if r.scenario.images >= 100_000]
    if big:
        peak = max(r.janitor.max_rss_kb for r in big) / 1024
        report_mb = max(len(r.janitor.stdout.encode()) for r in big) / 1024 / 1024
        parts.append(
            f"Peak RSS with 100,000 images in one repository was {peak:.0f} MB for the CLI, which lists, plans "
            f"and reports every image (its per-image JSON report alone is {report_mb:.0f} MB)"
            + (" — more than the 128 MB the deployed function has, so a repository that large needs more memory "
               "or a leaner report path in the Lambda." if peak > 128 else
               ", within the 128 MB the deployed function has."))
    cpu = max(rows, key=lambda r: r.janitor.cpu)
    parts.append(f"Janitor CPU time stays small next to wall time (at most {cpu.janitor.cpu:.1f} s, "
                 f"{cpu.scenario.name}): a sweep waits on ECR.")
    planner = dict(planner_figures())
    if planner:
        worst = max(planner.values())
        parts.append(
            f"The planner micro-benchmark " + (
                f"meets the {PLANNER_TARGET_S} s per million images target in every variant."
                if worst < PLANNER_TARGET_S else
                f"misses the {PLANNER_TARGET_S} s per million images target: "
                + ", ".join(f"{k} {v:.2f} s" for k, v in planner.items())
                + (f"; decide (the image graph around the plan) costs "
                   f"{planner['decide_untagged'] / planner['plan_untagged']:.0f}× the plan itself although no "
                   f"image here follows another."
                   if planner.get("plan_untagged") and planner.get("decide_untagged", 0) > 2 * planner["plan_untagged"]
                   else ".")))
    return " ".join(parts)


def write_results(path: Path, rows: list[Row], started_at: datetime, total: float,
                  overall: Optional[float], failures: list[str]) -> None:
    import boto3
    import moto

    text = [
        "# ecr-janitor benchmark results",
        "",
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC by `make bench`: the sweeps (bench/run.py) took "
        f"{total / 60:.1f} min" + (f", all of `make bench` (planner benchmark and builds included) "
                                   f"{overall / 60:.1f} min." if overall else "."),
        f"Machine: {machine()}; shared with other work while measuring.",
        f"ecr-janitor: release build of this checkout (`target/release/ecr-janitor sweep`, DRY_RUN=false, "
        f"PROTECT_IN_USE=none, MAX_DELETIONS_PER_RUN=off, MAX_CONCURRENCY={CONCURRENCY}); "
        f"boto3 {boto3.__version__} script bench/boto3_janitor.py (sequential, and with --threads); emulator: moto {moto.__version__} "
        f"with the bench speed-ups of bench/emulator_speedups.py (self-checked).",
        "",
        "Each scenario has ~30% expired untagged images (pushed more than "
        f"{DEFAULT_MAX_AGE_DAYS} days ago), 35% recent untagged and 35% tagged images, kept. Every run starts "
        "from the same seeded registry and is checked: exactly the expired images are gone"
        + (" — **some runs were wrong, see below**." if failures else " (all runs passed)."),
        "",
        "## Sweeps",
        "",
        *table(rows),
        "",
        "Janitor ÷ boto3: wall times against the sequential script; speed-up is its inverse. "
        "Minimum calls: ⌈repos/1000⌉ DescribeRepositories + per repository ⌈images/1000⌉ DescribeImages "
        "+ ⌈indexes/100⌉ BatchGetImage (no indexes here) + 2 × ⌈deletions/100⌉ (BatchDeleteImage and the "
        "DescribeImages re-check before it). Latency bound: janitor calls ÷ "
        f"{CONCURRENCY} (MAX_CONCURRENCY) × latency. Emulator busy: time the emulator spent serving the run's "
        "requests (one at a time): moto's share of the wall time, not the client's.",
        "",
        "Calls per action:",
        "",
        *details(rows),
        "",
        "## Planner (criterion, `cargo bench --bench planner`)",
        "",
        *planner_lines(),
        "",
    ]
    if failures:
        text += ["## Wrong results", "", *(f"- {f}" for f in failures), ""]
    text += ["## What the numbers mean", "", meaning(rows), ""]
    path.write_text("\n".join(text).rstrip() + "\n")


if __name__ == "__main__":
    sys.exit(main())

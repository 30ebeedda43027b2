"""Assertions shared by the end-to-end tests: the report must agree with what
is left in the emulator."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"

TOTAL_KEYS = ("repositories", "imagesScanned", "untaggedScanned", "expired", "deleted", "alreadyGone", "heldBack",
              "failed", "repositoryErrors", "bytesExpired", "bytesFreed", "estimatedMonthlySavingUsd")
EXPIRED_KEYS = {"imageDigest", "imageTags", "imagePushedAt", "imageSizeInBytes", "appliedRulePriority", "reason"}
KEPT_KEYS = {"imageDigest", "imageTags", "imagePushedAt", "imageSizeInBytes", "rulePriority", "reason"}


def plain(text: str) -> str:
    return ANSI.sub("", text)


@lru_cache(maxsize=None)
def _event_text(name: str) -> str:
    return (EVENTS_DIR / name).read_text()


def load_event(name: str) -> Any:
    """A sample event from events/ (a fresh copy each time)."""
    return json.loads(_event_text(name))


def scheduled_event(detail: Any = None) -> dict[str, Any]:
    """events/scheduled.json, what the EventBridge Scheduler schedule sends, with
    ``detail`` in place of its empty detail when given."""
    event = load_event("scheduled.json")
    if detail is not None:
        event["detail"] = copy.deepcopy(detail)
    return event


def event_overrides(event: dict[str, Any]) -> dict[str, Any]:
    """The overrides an event carries: an EventBridge event's ``detail``, or the plain object."""
    return (event.get("detail") or {}) if "detail-type" in event else event


def repo_entry(report: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in report["repositories"]:
        if entry["name"] == name:
            return entry
    raise AssertionError(f"repository {name!r} is not in the report: {[r['name'] for r in report['repositories']]}")


def expired_digests(report: dict[str, Any], name: Optional[str] = None) -> set[str]:
    entries = report["repositories"] if name is None else [repo_entry(report, name)]
    return {e["imageDigest"] for r in entries for e in r.get("expired", [])}


def kept_digests(report: dict[str, Any], name: str) -> set[str]:
    return {e["imageDigest"] for e in repo_entry(report, name).get("kept") or []}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_report_shape(report: dict[str, Any]) -> None:
    assert isinstance(report, dict), report
    for key in ("dryRun", "complete", "startedAt", "durationMs", "totals", "repositories", "notVisited",
                "requestedNotFound"):
        assert key in report, f"report has no {key!r}: {sorted(report)}"
    assert isinstance(report["dryRun"], bool) and isinstance(report["complete"], bool)
    parse_time(report["startedAt"])
    assert isinstance(report["durationMs"], int) and report["durationMs"] >= 0
    totals = report["totals"]
    for key in TOTAL_KEYS:
        assert key in totals, f"totals has no {key!r}: {sorted(totals)}"
    # The same repository name may be in several regions (replication): (name, region) is the key.
    names = [(r["name"], r["region"]) for r in report["repositories"]]
    assert names == sorted(names), f"repositories not sorted by name and region: {names}"
    assert len(names) == len(set(names)), f"repository listed twice: {names}"
    for r in report["repositories"]:
        for key in ("name", "imagesScanned", "untaggedScanned", "expired", "deleted", "alreadyGone",
                    "failures", "bytesFreed"):
            assert key in r, f"repository entry has no {key!r}: {r}"
        for e in r["expired"]:
            assert EXPIRED_KEYS <= set(e), f"expired entry lacks {EXPIRED_KEYS - set(e)}: {e}"
            assert isinstance(e["reason"], str) and e["reason"], e
            assert isinstance(e["imageTags"], list), e
            parse_time(e["imagePushedAt"])
        if report["dryRun"]:
            if not r.get("error") and not r.get("skipped"):
                assert isinstance(r.get("kept"), list), f"dry-run report lacks 'kept' for {r['name']}"
        else:
            assert "kept" not in r or r["kept"] is None, f"'kept' is only for dry runs: {r['name']}"
        for k in r.get("kept") or []:
            assert KEPT_KEYS <= set(k), f"kept entry lacks {KEPT_KEYS - set(k)}: {k}"
            assert isinstance(k["reason"], str) and k["reason"], k
    # Totals are the sums of the repository entries.
    repos = report["repositories"]
    assert totals["repositories"] == len(repos), (totals, len(repos))
    assert totals["imagesScanned"] == sum(r["imagesScanned"] for r in repos)
    assert totals["untaggedScanned"] == sum(r["untaggedScanned"] for r in repos)
    assert totals["expired"] == sum(len(r["expired"]) for r in repos)
    assert totals["deleted"] == sum(r["deleted"] for r in repos)
    assert totals["alreadyGone"] == sum(r["alreadyGone"] for r in repos)
    assert totals["failed"] == sum(len(r["failures"]) for r in repos)
    assert totals["heldBack"] == sum(len(r.get("heldBack", [])) for r in repos)
    assert totals["repositoryErrors"] == sum(1 for r in repos if r.get("error"))
    assert totals["bytesExpired"] == sum(e["imageSizeInBytes"] or 0 for r in repos for e in r["expired"])
    assert totals["bytesFreed"] == sum(r["bytesFreed"] for r in repos)
    assert isinstance(totals["estimatedMonthlySavingUsd"], (int, float))


def check_against_emulator(report: dict[str, Any], before: dict[str, dict[str, set[str]]],
                           after: dict[str, dict[str, set[str]]]) -> None:
    """``before``/``after`` are ``emu.snapshot()``s (repo -> digest -> tags)
    taken around the run. Checks that the report tells what happened."""
    check_report_shape(report)
    dry = report["dryRun"]
    listed = {r["name"]: r for r in report["repositories"]}
    for name, images in before.items():
        if name not in listed:
            assert after.get(name) == images, f"{name} is not in the report but changed"
    for name, r in listed.items():
        assert name in before, f"report lists {name}, which does not exist"
        had = before[name]
        now = after.get(name, {})
        expired = {e["imageDigest"] for e in r["expired"]}
        assert len(expired) == len(r["expired"]), f"{name}: an image expired twice"
        assert expired <= set(had), f"{name}: expired images that never existed: {expired - set(had)}"
        untagged = {d for d, tags in had.items() if not tags}
        if not r.get("error") and not r.get("skipped"):
            assert r["untaggedScanned"] == len(untagged), (name, r["untaggedScanned"], len(untagged))
            # Every image is listed, tagged or not.
            assert r["imagesScanned"] == len(had), (name, r["imagesScanned"], len(had))
        for e in r["expired"]:
            assert sorted(e["imageTags"]) == sorted(had[e["imageDigest"]]), (name, e)
        if dry:
            assert now == had, f"{name}: a dry run changed the repository"
            assert r["deleted"] == 0 and r["alreadyGone"] == 0 and r["bytesFreed"] == 0, r
            kept = {k["imageDigest"] for k in r.get("kept") or []}
            assert not expired & kept, f"{name}: both expired and kept: {expired & kept}"
            if r.get("kept") is not None:
                assert len(expired) + len(kept) == r["imagesScanned"], (name, len(expired), len(kept))
                assert untagged <= expired | kept, f"{name}: untagged images neither expired nor kept"
                assert expired | kept <= set(had)
            continue
        failed = {f["imageDigest"] for f in r["failures"]}
        assert failed <= expired, f"{name}: failures for images not expired: {failed - expired}"
        accounted = r["deleted"] + r["alreadyGone"] + len(failed)
        # Planned deletions that did not happen (a failed call, a tag added meanwhile, …) are
        # moved from `expired` to `heldBack`, so every expired image is accounted for.
        assert accounted == len(expired), (
            f"{name}: deleted {r['deleted']} + alreadyGone {r['alreadyGone']} + failed {len(failed)} "
            f"!= expired {len(expired)}")
        held = {h["imageDigest"] for h in r.get("heldBack", [])}
        assert not held & expired, f"{name}: both held back and expired: {held & expired}"
        assert held <= set(now), f"{name}: held back but gone: {held - set(now)}"
        for h in r.get("heldBack", []):
            assert h["reason"].startswith("held back: "), h
        gone = expired - set(now)
        assert len(gone) == r["deleted"] + r["alreadyGone"], (
            f"{name}: {len(gone)} expired images are gone, the report says deleted {r['deleted']} "
            f"+ alreadyGone {r['alreadyGone']}")
        assert failed <= set(now), f"{name}: reported failed but gone: {failed - set(now)}"
        for digest in set(had) - expired:
            assert digest in now, f"{name}: {digest} was not expired but is gone"
            assert now[digest] == had[digest], f"{name}: tags of {digest} changed"
        freed = sum(e["imageSizeInBytes"] or 0 for e in r["expired"] if e["imageDigest"] in gone)
        if r["alreadyGone"] == 0:
            assert r["bytesFreed"] == freed, (name, r["bytesFreed"], freed)
        else:
            assert r["bytesFreed"] <= freed, (name, r["bytesFreed"], freed)


def remaining(emu, repo: str) -> set[str]:
    return set(emu.snapshot().get(repo, {}))


def assert_names(stderr: str, names: Iterable[str]) -> None:
    text = plain(stderr)
    missing = [n for n in names if n not in text]
    assert not missing, f"stderr does not name {missing}:\n{text}"


def sweep_checked(janitor, emu, *args, env=None, event=None, expect_code=0):
    """Run a sweep, require ``expect_code`` and a report, and check the report
    against the emulator's state before and after. Returns the report."""
    before = emu.snapshot()
    run = janitor.sweep(*args, env=env, event=event)
    assert run.code == expect_code, run.describe()
    assert run.report is not None, "no report JSON on stdout\n" + run.describe()
    check_against_emulator(run.report, before, emu.snapshot())
    return run.report

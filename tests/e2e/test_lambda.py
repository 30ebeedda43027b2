"""The Lambda path: the `bootstrap` binary under `cargo lambda watch`, invoked
with each event in events/ by `cargo lambda invoke`, against the emulator
(DRY_RUN=false). One watch process serves the whole module."""

from __future__ import annotations

import json

import pytest

from ecr_emulator import days_ago
from e2e_helpers import EVENTS_DIR, check_against_emulator, event_overrides, expired_digests, remaining
from lambda_runtime import LambdaError, LambdaWatch
from seeding import DEFAULT_MAX_AGE_DAYS, MB, seed_repositories

pytestmark = pytest.mark.lambda_runtime

# The invocation events; run-*.json are samples of the event the janitor emits.
EVENT_FILES = sorted(p for p in EVENTS_DIR.glob("*.json") if not p.name.startswith("run-"))
BASE_REPOS = ["api/orders", "batch/reports", "web/frontend"]


@pytest.fixture(scope="module")
def watch(emulator_server, binaries, tmp_path_factory):
    # `binaries` has built everything already, so watch's `cargo run` starts at once.
    # No deletion brake: the large-report test deletes 24,000 images in one run.
    w = LambdaWatch(emulator_server.endpoint, {"DRY_RUN": "false", "MAX_DELETIONS_PER_RUN": "off"},
                    log_dir=tmp_path_factory.mktemp("cargo-lambda"))
    try:
        w.start()
    except LambdaError as e:
        pytest.fail(str(e), pytrace=False)
    yield w
    w.stop()


IMAGE_SIZE = 80 * MB


def seed(emu, repos):
    """Per repository: 2 old untagged (expire), 1 recent untagged and 1 old tagged (kept)."""
    return seed_repositories(emu, repos, old=2, size=IMAGE_SIZE)


def assert_complete(report, emu):
    if report["complete"]:
        return
    hint = ""
    if report["notVisited"] and "DescribeImages" not in emu.request_counts():
        hint = ("\nThe function stopped before visiting any repository. cargo-lambda's runtime "
                "emulator sends `Lambda-Runtime-Deadline-Ms` as a duration (e.g. 600000), not as "
                "milliseconds since the epoch like AWS Lambda does; a handler that takes it literally "
                "sees a deadline in 1970 and stops at once.")
    raise AssertionError(f"run incomplete: notVisited={report['notVisited']}{hint}")


def test_events_directory_has_the_documented_events():
    names = {p.name for p in EVENT_FILES}
    assert {"scheduled.json", "dry-run.json", "single-repository.json"} <= names, names


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_invoke_with_event_file(watch, emu, event_file):
    event = json.loads(event_file.read_text())
    detail = event_overrides(event)
    named = detail.get("repositories")
    repos = sorted(set(BASE_REPOS) | set(named or []))
    plan = seed(emu, repos)
    before = emu.snapshot()

    try:
        report = watch.invoke(data_file=event_file)
    except LambdaError as e:
        pytest.fail(str(e), pytrace=False)

    after = emu.snapshot()
    check_against_emulator(report, before, after)
    dry = bool(detail.get("dryRun", False))
    assert report["dryRun"] is dry
    assert_complete(report, emu)
    swept = sorted(named) if named else repos
    assert [r["name"] for r in report["repositories"]] == swept
    for name in repos:
        old, kept = plan[name]
        if name in swept:
            assert expired_digests(report, name) == old, name
            assert remaining(emu, name) == (old | kept if dry else kept), name
        else:
            assert remaining(emu, name) == old | kept, name
    if dry:
        assert emu.request_counts().get("BatchDeleteImage", 0) == 0


def test_scheduled_event_sweeps_every_repository(watch, emu):
    path = EVENTS_DIR / "scheduled.json"
    if not path.exists():
        pytest.fail("events/scheduled.json is missing")
    plan = seed(emu, BASE_REPOS + ["tools/base"])
    report = watch.invoke(data_file=path)
    assert report["dryRun"] is False
    assert_complete(report, emu)
    for name, (old, kept) in plan.items():
        assert remaining(emu, name) == kept, name
    assert report["totals"]["deleted"] == 2 * len(plan)
    assert report["totals"]["bytesFreed"] == 2 * len(plan) * IMAGE_SIZE


def test_bad_event_is_refused_and_nothing_is_done(watch, emu):
    seed(emu, BASE_REPOS)
    before = emu.snapshot()
    proc = watch.invoke_raw(data=json.dumps({"dryRun": True, "deleteEverything": True}))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"the invocation did not fail:\n{output}"
    assert "deleteEverything" in output, f"the error does not name the unknown field:\n{output}"
    assert emu.snapshot() == before
    assert emu.request_counts() == {}


def test_function_keeps_serving_after_a_refused_event(watch, emu):
    plan = seed(emu, ["api/orders"])
    refused = watch.invoke_raw(data=json.dumps({"repositories": "api/orders"}))
    assert refused.returncode != 0, f"the first event was not refused:\n{refused.stdout}\n{refused.stderr}"
    assert emu.request_counts() == {}
    report = watch.invoke(data=json.dumps({"repositories": ["api/orders"]}))
    assert_complete(report, emu)
    assert remaining(emu, "api/orders") == plan["api/orders"].kept
    assert [r["name"] for r in report["repositories"]] == ["api/orders"]


@pytest.mark.slow
def test_a_report_too_big_for_a_lambda_response_comes_back_as_a_summary(watch, emu):
    # ~24,000 expired images make a report far beyond Lambda's 6 MB response limit.
    repos = [f"big/repo-{r}" for r in range(12)]
    old = {name: {emu.push_image(name, pushed_at=days_ago(DEFAULT_MAX_AGE_DAYS + 6 + i % 40),
                                  size=1000)
                  for i in range(2000)} for name in repos}
    recent = {name: emu.push_image(name, pushed_at=days_ago(1)) for name in repos}
    report = watch.invoke(data=json.dumps({}), timeout=900)
    assert_complete(report, emu)
    assert report["imageListsOmitted"] is True
    assert report["totals"]["expired"] == report["totals"]["deleted"] == 24_000
    assert [r["name"] for r in report["repositories"]] == sorted(repos)
    for r in report["repositories"]:
        assert r["expired"] == [] and r["deleted"] == 2000, r["name"]
    for name in repos:
        assert remaining(emu, name) == {recent[name]}, name
    log = watch.log_path.read_text()
    logged = {d for d in old["big/repo-0"] if d in log}
    assert logged == old["big/repo-0"], "the log keeps every expired image when the response cannot"

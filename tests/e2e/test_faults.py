"""ECR answering errors: throttling is retried and the run completes; a
repository that fails is reported (exit 1) without stopping the others; a
registry that cannot be listed is a failed run (exit 1) that deletes nothing."""

from __future__ import annotations

import pytest

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, repo_entry, sweep_checked
from seeding import seed_repositories


def seed(emu, names=("a/one", "b/two", "c/three")):
    """Per repository: 3 images a default sweep expires, 2 it keeps."""
    return seed_repositories(emu, names, old=3)


def test_throttling_is_retried_and_the_run_completes(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=2)
    emu.inject_fault("BatchDeleteImage", times=2)
    emu.inject_fault("DescribeRepositories", times=1)

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})

    assert report["complete"] is True
    assert report["totals"]["repositoryErrors"] == 0 and report["totals"]["failed"] == 0
    for name, (olds, keep) in expected.items():
        assert remaining(emu, name) == keep, name
        assert expired_digests(report, name) == olds
    assert emu.pending_faults() == 0, "the injected faults were not all hit"
    counts = emu.request_counts()
    assert counts["DescribeImages"] >= 3 + 2
    assert counts["BatchDeleteImage"] >= 3 + 2


def test_throttling_on_many_pages(janitor, emu):
    olds = {emu.push_image("big", pushed_at=days_ago(30)) for _ in range(350)}
    keep = emu.push_image("big", pushed_at=days_ago(1))
    emu.inject_fault("DescribeImages", times=2)
    emu.inject_fault("BatchDeleteImage", times=2)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "big") == {keep}
    assert expired_digests(report, "big") == olds


def test_server_errors_are_retried(janitor, emu):
    expected = seed(emu, names=("svc",))
    emu.inject_fault("DescribeImages", times=1, status=500, code="ServerException", message="Internal error")
    emu.inject_fault("BatchDeleteImage", times=1, status=503, code="ServiceUnavailableException",
                     message="Service unavailable")
    sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert remaining(emu, "svc") == expected["svc"].kept


def test_a_failing_repository_is_reported_and_others_still_swept(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:DescribeImages", repository="b/two")

    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)

    entry = repo_entry(report, "b/two")
    assert entry.get("error"), entry
    assert entry["expired"] == [] and entry["deleted"] == 0
    assert report["totals"]["repositoryErrors"] == 1
    olds, keep = expected["b/two"]
    assert remaining(emu, "b/two") == olds | keep
    for name in ("a/one", "c/three"):
        assert remaining(emu, name) == expected[name].kept, name


def test_a_failing_batch_delete_is_reported(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("BatchDeleteImage", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:BatchDeleteImage", repository="a/one")
    # A BatchDeleteImage call that fails as a whole is a repository error (exit 1), not
    # per-image failures: those are for images ECR itself refused inside a successful call.
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)
    entry = repo_entry(report, "a/one")
    assert entry.get("error"), entry
    assert "AccessDenied" in entry["error"] or "not authorized" in entry["error"], entry["error"]
    assert entry["deleted"] == 0 and entry["failures"] == [] and entry["bytesFreed"] == 0, entry
    assert report["totals"]["repositoryErrors"] == 1
    assert [r["name"] for r in report["repositories"] if r.get("error")] == ["a/one"]
    olds, keep = expected["a/one"]
    assert remaining(emu, "a/one") == olds | keep
    for name in ("b/two", "c/three"):
        assert remaining(emu, name) == expected[name].kept, name


def test_listing_repositories_fails(janitor, emu):
    seed(emu)
    before = emu.snapshot()
    emu.inject_fault("DescribeRepositories", times=100, code="AccessDeniedException",
                     message="User is not authorized to perform: ecr:DescribeRepositories")
    run = janitor.sweep(env={"DRY_RUN": "false"})
    assert run.code == 1, run.describe()
    assert emu.snapshot() == before
    assert emu.request_counts().get("BatchDeleteImage", 0) == 0
    assert "DescribeImages" not in emu.request_counts()
    assert run.stderr.strip()


@pytest.mark.slow
def test_persistent_throttling_on_one_repository_is_a_repository_error(janitor, emu):
    expected = seed(emu)
    emu.inject_fault("DescribeImages", times=1000, repository="c/three")
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)
    assert repo_entry(report, "c/three").get("error")
    for name in ("a/one", "b/two"):
        assert remaining(emu, name) == expected[name].kept, name


def fault_free_expectation(janitor, emu):
    """What a fault-free live run of this registry leaves: the dry run's kept images."""
    dry = sweep_checked(janitor, emu)
    return {r["name"]: {k["imageDigest"] for k in r["kept"]} for r in dry["repositories"]}


def test_ten_percent_503_on_every_ecr_action_leaves_what_a_fault_free_run_leaves(janitor, emu):
    seed_repositories(emu, [f"svc-{i}" for i in range(6)], old=4)
    idx = emu.push_index("multi", pushed_at=days_ago(40))
    keep_idx = emu.push_index("multi", ["v1"], pushed_at=days_ago(40))
    expected = fault_free_expectation(janitor, emu)
    assert expected["multi"] == {keep_idx.digest, *keep_idx.children}
    emu.inject_fault("ecr:*", times=10**6, status=503, code="ServiceUnavailableException",
                     message="Service unavailable", rate=0.1)
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert report["complete"] is True and report["totals"]["repositoryErrors"] == 0
    assert report["totals"]["failed"] == 0 and report["totals"]["heldBack"] == 0
    for name, kept in expected.items():
        assert remaining(emu, name) == kept, name
    assert idx.digest not in remaining(emu, "multi")
    faulted = sum(1 for r in emu.request_log() if r.faulted)
    assert faulted > 0, "the fault rate never hit: the test proved nothing"


def test_an_outage_mid_run_is_reported_and_a_second_run_finishes(janitor, emu):
    names = [f"svc-{i}" for i in range(6)]
    seed(emu, names=names)
    expected = fault_free_expectation(janitor, emu)
    emu.clear_request_counts()
    # After the listing of repositories and a few calls, ECR refuses every call for a while.
    emu.inject_fault("ecr:*", times=12, after=4, code="AccessDeniedException",
                     message="refused during an outage")
    first = sweep_checked(janitor, emu, env={"DRY_RUN": "false"}, expect_code=1)
    failed = [r["name"] for r in first["repositories"] if r.get("error")]
    assert failed, "the outage hit no repository"
    for r in first["repositories"]:
        if r.get("error"):
            assert "refused during an outage" in r["error"] and r["errorCode"] == "AccessDeniedException"
    untouched = [n for n in failed if remaining(emu, n) != expected[n]]
    assert untouched, "a repository the outage hit still has its expired images"
    emu.clear_faults()  # ECR answers again
    second = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert second["totals"]["repositoryErrors"] == 0
    for name in names:
        assert remaining(emu, name) == expected[name], name


def test_a_deadline_shorter_than_the_sweep_lists_what_it_left_and_the_next_run_visits_it(janitor, emu):
    names = [f"svc-{i}" for i in range(10)]
    seeded = seed(emu, names=names)
    expected = fault_free_expectation(janitor, emu)
    # One repository at a time, each about three ECR calls of 0.3 s (list, re-check,
    # delete): the ten take about 9 s, more than the 6 s a run with 8 s left may start
    # repositories in (a quarter of the time is kept for the ones in flight).
    emu.latency = 0.3
    live = {"DRY_RUN": "false", "MAX_CONCURRENCY": "1"}
    first = sweep_checked(janitor, emu, "--deadline-seconds", "8", env=live)
    emu.latency = 0
    visited = [r["name"] for r in first["repositories"]]
    assert first["complete"] is False
    assert visited and first["notVisited"], (visited, first["notVisited"])
    assert sorted(visited + first["notVisited"]) == sorted(names), "each listed once, visited or not"
    for name in first["notVisited"]:
        assert remaining(emu, name) == seeded[name].expired | seeded[name].kept, f"{name} was touched"
    for name in visited:
        assert remaining(emu, name) == expected[name], name
    second = sweep_checked(janitor, emu, env=live)
    assert second["complete"] is True and second["notVisited"] == []
    assert {r["name"] for r in second["repositories"] if r["deleted"]} == set(first["notVisited"])
    for name in names:
        assert remaining(emu, name) == expected[name], name
